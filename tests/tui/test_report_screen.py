"""The report screen: runs list, selected run's metrics, mistakes, compare, damaged folders, --run."""

from __future__ import annotations

import io
import json
import os
import re
import time

import pytest
from rich.console import Console
from textual.widgets import DataTable, Static, TabbedContent

from core.config import TrainConfig
from tests.tui.fake_runs import fixed_explanation, write_fake_run
from tests.tui.waiting import wait_for
from tui.widgets.predict_model import ModelPicker


async def settle(pilot, rounds: int = 4) -> None:
    """Let the chained workers (list runs -> load the selected run) finish and their results render."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def text_of(app, selector: str) -> str:
    """What a Static shows, as plain text."""
    content = app.screen.query_one(selector, Static).content
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(content)
    return console.export_text()


def metrics_of(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


async def test_f4_lists_runs_and_shows_the_selected_runs_metrics(make_app, finished_runs):
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        assert app.current_mode == "report"
        table = app.screen.query_one("#runs", DataTable)
        assert [key.value for key in table.rows] == [str(newer), str(older)]  # newest first
        for i, run in enumerate((newer, older)):
            test = metrics_of(run)["test"]
            assert table.get_row_at(i)[4] == f"{test['accuracy'] * 100:.1f}/{test['f1'] * 100:.1f}"
        assert table.get_row_at(0)[3] == "95.0/95.0" and table.get_row_at(1)[3] == "90.0/90.0"

        metrics = metrics_of(newer)
        test, base = metrics["test"], metrics["baseline"]
        assert app.screen.report.path == newer
        assert newer.name in text_of(app, "#summary-head")
        summary = text_of(app, "#summary-tables")
        assert (f"accuracy {test['accuracy']:.1%} (95% CI {test['accuracy_ci_low'] * 100:.1f}–"
                f"{test['accuracy_ci_high']:.1%})") in summary
        assert f"{test['n']} reviews" in summary
        assert f"{(test['accuracy'] - base['accuracy']) * 100:+.1f} pts" in summary
        assert f"{(test['f1'] - base['f1']) * 100:+.1f} pts" in summary
        (n_n, n_p), (p_n, p_p) = test["confusion_matrix"]
        assert re.search(rf"negative\s+{n_n}\s+{n_p}\s", summary) and re.search(rf"positive\s+{p_n}\s+{p_p}\s", summary)
        assert re.search(r"negative\s+\d+\.\d%\s+\d+\.\d%\s+\d+\.\d%\s+30", summary)  # per-class with support
        validation = text_of(app, "#summary-validation")
        assert "★ 3" in validation and len(re.findall(r"^\s*(★ )?\d\s+\d+\s+0\.\d{4}", validation, re.M)) == 3

        await pilot.press("down")
        await settle(pilot)
        assert app.screen.report.path == older and older.name in text_of(app, "#summary-head")


async def test_errors_tab_lists_mistakes_most_confident_first_and_enter_opens_the_console(
        make_app, finished_runs, monkeypatch):
    older, newer = finished_runs
    app = make_app()
    sent = []
    original = type(app).send_to_console
    monkeypatch.setattr(type(app), "send_to_console", lambda self, text, run=None: (sent.append((text, run)),
                                                                                    original(self, text, run)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        app.screen.query_one(TabbedContent).active = "tab-errors"
        await pilot.pause()
        table = app.screen.query_one("#errors", DataTable)
        rows = [json.loads(line) for line in (newer / "test_predictions.jsonl").read_text().splitlines()]
        wrong = sorted((r for r in rows if r["predicted"] != r["label"]), key=lambda r: -r["confidence"])
        assert table.row_count == len(wrong) == 9
        shown = [table.get_row_at(i) for i in range(table.row_count)]
        assert [str(row[3]) for row in shown] == [r["text"] for r in wrong]
        assert all(str(row[1]) != str(row[2]) for row in shown)
        confidences = [float(row[0].rstrip("%")) for row in shown]
        assert confidences == sorted(confidences, reverse=True)

        table.focus()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.current_mode == "predict"
        assert sent == [(wrong[1]["text"], newer)]
        await settle(pilot)


async def test_marking_two_runs_compares_their_curves_and_config(make_app, finished_runs, runs_root):
    other = write_fake_run(runs_root, "20260103-120000-tiny-reviews", created=1_790_172_800.0,
                           config=TrainConfig(model="tiny", dataset="reviews.csv", epochs=3, learning_rate=3e-5))
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        assert "Press space on two runs" in text_of(app, "#compare-legend")
        await pilot.press("space", "down", "space")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#runs", DataTable)
        assert [table.get_row_at(i)[0] for i in range(3)] == ["A", "B", ""]
        assert screen.query_one(TabbedContent).active == "tab-compare"
        assert screen.marked == [other, newer]
        diff = text_of(app, "#compare-diff")
        assert re.search(r"learning_rate\s+3e-05\s+2e-05", diff)
        assert "epochs" not in diff and "model" not in diff  # only fields that differ
        legend = text_of(app, "#compare-legend")
        assert other.name in legend and newer.name in legend
        plot = screen.query_one("#compare-val")
        assert [s.label for s in plot.series] == ["A accuracy", "A F1", "B accuracy", "B F1"]
        assert plot.series[2].points == [(1.0, 0.75), (2.0, 0.85), (3.0, 0.95)]

        await pilot.press("space")  # unmark B: back to the hint
        await settle(pilot)
        assert screen.marked == [other] and "Press space" in text_of(app, "#compare-legend")


async def test_a_damaged_run_is_listed_as_unreadable(make_app, finished_runs, runs_root):
    damaged = write_fake_run(runs_root, "20260104-120000-tiny-reviews", created=1_790_259_200.0)
    (damaged / "status.json").write_text("{ this is not json")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        statuses = {key.value: str(table.get_row(key)[1]) for key in table.rows}
        assert statuses[str(damaged)] == "unreadable" and statuses[str(finished_runs[0])] == "finished"
        assert app.screen.report.path == damaged  # newest (its folder time), selected
        head = text_of(app, "#summary-head")
        assert "unreadable" in head and "not valid JSON" in head
        await pilot.press("down")
        await settle(pilot)
        assert app.screen.report.info.status == "finished"


async def test_open_run_starts_on_the_report_with_that_run_selected(make_app, finished_runs):
    older, newer = finished_runs
    app = make_app(open_run=older)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.current_mode == "report"
        assert app.screen.query_one("#runs", DataTable).cursor_row == 1
        assert app.screen.report.path == older


async def test_open_run_outside_the_runs_folder_is_listed_too(make_app, runs_root, tmp_path):
    elsewhere = write_fake_run(tmp_path / "elsewhere", "20260101-120000-tiny-reviews")
    write_fake_run(runs_root, "20260102-120000-tiny-reviews", created=1_790_086_400.0)
    app = make_app(open_run=elsewhere)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == 2 and app.screen.report.path == elsewhere


async def test_running_and_failed_runs_show_what_exists(make_app, runs_root):
    running = write_fake_run(runs_root, "20260105-120000-tiny-reviews", status="running", created=1_790_000_000.0)
    failed = write_fake_run(runs_root, "20260106-120000-tiny-reviews", status="failed", created=1_790_086_400.0)
    (failed / "status.json").write_text(json.dumps({"status": "failed", "error": "CUDA out of memory: lower batch_size"}))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen.report.path == failed
        assert "lower batch_size" in text_of(app, "#summary-head")
        await pilot.press("down")
        await settle(pilot)
        assert app.screen.report.path == running
        assert "No test metrics yet" in text_of(app, "#summary-tables")
        assert "★" in text_of(app, "#summary-validation")
        assert len(app.screen.query_one("#loss-plot").series) == 2


async def test_on_a_short_terminal_the_runs_table_leaves_the_tabs_most_of_the_screen(make_app, runs_root):
    """80x24 over SSH: eight runs would take 40% of the screen and leave the Data tab one finding; a quarter there."""
    for day in range(8):
        write_fake_run(runs_root, f"202601{day + 10}-120000-tiny-reviews", created=1_790_000_000.0 + day * 86_400)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        short = app.screen.query_one("#runs", DataTable).size.height
        assert len(app.screen.runs) == 8 and 3 <= short <= 24 // 4
        await pilot.resize_terminal(100, 40)
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).size.height > short  # a tall terminal shows more runs


async def test_empty_runs_folder_then_a_new_run_appears(make_app, runs_root):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == 0
        assert "No runs yet in the runs folder" in text_of(app, "#summary-head")
        await pilot.press("space", "r")  # nothing to mark; reload finds nothing
        await settle(pilot)
        run = write_fake_run(runs_root, "20260101-120000-tiny-reviews")
        app.runs_version += 1  # what the app does when a run starts or ends
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == 1 and app.screen.report.path == run


@pytest.fixture()
def utc():
    """Show run dates in UTC, so snapshots do not depend on the machine's time zone."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_snapshot_summary_of_the_newer_run(snap_compare, make_app, finished_runs, utc):
    async def run_before(pilot):
        await pilot.press("f4")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=run_before)


def test_snapshot_errors_tab(snap_compare, make_app, finished_runs, utc, monkeypatch):
    monkeypatch.setattr("core.explain.explain", lambda predictor, text: fixed_explanation(text))

    async def run_before(pilot):
        await pilot.press("f4")
        await settle(pilot)
        pilot.app.screen.query_one(TabbedContent).active = "tab-errors"
        pilot.app.screen.query_one("#errors").focus()
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=run_before)


async def test_runs_with_malformed_files_are_listed_beside_the_good_one(make_app, runs_root, trained_run):
    import shutil

    source = trained_run[0].run_dir
    good = runs_root / "20260101-120000-good"
    shutil.copytree(source, good)
    bad_status = runs_root / "20260102-120000-bad-status"
    shutil.copytree(source, bad_status)
    (bad_status / "status.json").write_text("[]")
    bad_config = runs_root / "20260103-120000-bad-config"
    shutil.copytree(source, bad_config)
    (bad_config / "config.json").write_text("[1, 2]")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#runs", DataTable)
        statuses = {key.value: str(table.get_row(key)[1]) for key in table.rows}
        assert statuses == {str(good): "finished", str(bad_status): "unreadable", str(bad_config): "unreadable"}
        paths = [r.path for r in screen.runs]
        for run, reason in ((bad_status, "status.json in 20260102-120000-bad-status holds a JSON list"),
                            (bad_config, "config.json in 20260103-120000-bad-config holds a JSON list")):
            table.move_cursor(row=paths.index(run))
            await settle(pilot)
            assert screen.report.path == run and screen.report.info.status == "unreadable"
            head = text_of(app, "#summary-head")
            assert "unreadable" in head and reason in head
            assert text_of(app, "#summary-tables").strip() == ""
        table.move_cursor(row=paths.index(good))
        await settle(pilot)
        assert screen.report.path == good and screen.report.test is not None
        assert "Test split" in text_of(app, "#summary-tables")
        await pilot.press("r")  # a reload lists all three again
        await settle(pilot)
        assert table.row_count == 3
        await pilot.press("f2", "f5")  # the other screens that list runs cope too; F5 picks the good run
        await settle(pilot)
        assert app.is_running and app.screen.query_one(ModelPicker).predictor.model_dir == good / "model"


def _stop_run(run, stop, error: str | None) -> None:
    """Make `run` a stopped run whose events end with `stop` (a TrainingStopped)."""
    with (run / "events.jsonl").open("a") as fh:
        fh.write(json.dumps(stop.to_dict()) + "\n")
    (run / "status.json").write_text(json.dumps({"status": "stopped", "error": error, "updated": 0, "pid": None}))


async def test_stopped_runs_say_whether_a_model_was_saved_and_tested(make_app, runs_root):
    from core.events import StageChanged, TrainingStopped

    during_test = write_fake_run(runs_root, "20260101-120000-tiny-reviews", status="stopped")
    _stop_run(during_test, TrainingStopped(run_dir=str(during_test), step=60, test=None, saved=True),
              "test scoring was stopped; score the model with sentitune evaluate RUN")
    early = write_fake_run(runs_root, "20260102-120000-tiny-reviews", status="stopped", created=1_790_086_400.0)
    (early / "events.jsonl").write_text(json.dumps(StageChanged("data", "reading reviews.csv").to_dict()) + "\n")
    _stop_run(early, TrainingStopped(run_dir=str(early), step=0, test=None, saved=False),
              "stopped before training began; no model was saved")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen.report.path == early
        head = text_of(app, "#summary-head")
        assert "Stopped before training began; no model saved." in head and "model saved (" not in head
        summary = text_of(app, "#summary-tables")
        assert "the run was stopped before its model was tested" in summary and "yet" not in summary

        await pilot.press("down")
        await settle(pilot)
        assert app.screen.report.path == during_test
        assert "Stopped at step 60; model saved (not tested)." in text_of(app, "#summary-head")
        assert "the run was stopped before its model was tested" in text_of(app, "#summary-tables")


async def test_a_baseline_scored_on_a_sample_says_so_under_the_gain_table(make_app, runs_root):
    sampled = write_fake_run(runs_root, "20260101-120000-tiny-reviews")
    metrics = metrics_of(sampled)
    metrics["baseline"] |= {"n": 2000, "sampled_from": 7500, "accuracy": 0.512, "accuracy_ci_low": 0.49,
                            "accuracy_ci_high": 0.534}
    (sampled / "metrics.json").write_text(json.dumps(metrics))
    whole = write_fake_run(runs_root, "20260102-120000-tiny-reviews", created=1_790_086_400.0)
    metrics = metrics_of(whole)
    metrics["baseline"] |= {"n": 60, "sampled_from": 60}
    (whole / "metrics.json").write_text(json.dumps(metrics))
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen.report.path == whole
        assert "seeded sample" not in text_of(app, "#summary-tables")  # every test review was scored
        await pilot.press("down")
        await settle(pilot)
        assert app.screen.report.path == sampled
        summary = " ".join(text_of(app, "#summary-tables").split())
        assert ("untuned model scored on 2,000 of 7,500 test reviews (a seeded sample), "
                "accuracy 51.2% (95% CI 49.0–53.4%)") in summary


async def test_figures_of_the_wrong_type_in_metrics_json_never_close_the_app(make_app, runs_root):
    good = write_fake_run(runs_root, "20260101-120000-tiny-reviews")
    unscorable = write_fake_run(runs_root, "20260102-120000-tiny-reviews", created=1_790_086_400.0)
    metrics = metrics_of(unscorable)
    metrics["baseline"]["accuracy"] = "high"  # core cannot compute the gain: the run cannot be loaded at all
    (unscorable / "metrics.json").write_text(json.dumps(metrics))
    unshowable = write_fake_run(runs_root, "20260103-120000-tiny-reviews", created=1_790_172_800.0)
    metrics = metrics_of(unshowable)
    metrics["validation"][0]["loss"] = "low"  # loads, but cannot be shown as figures
    metrics["test"]["n"] = "sixty"
    (unshowable / "metrics.json").write_text(json.dumps(metrics))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        for run in (unshowable, unscorable):
            assert app.is_running and app.screen.selected == run
            head = text_of(app, "#summary-head")
            # core names the damaged figure; the run's other files still show
            assert "is not a number" in head and "the run folder is damaged" in head
            await pilot.press("down")
            await settle(pilot)
        assert app.screen.report.path == good and "Test split" in text_of(app, "#summary-tables")
        await pilot.press("space", "up", "space")  # compare the good run with a damaged one
        await settle(pilot)
        assert app.is_running


async def test_a_failed_run_without_a_checkpoint_does_not_offer_resume(make_app, runs_root):
    failed = write_fake_run(runs_root, "20260101-120000-tiny-reviews", status="failed")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen.selected == failed
        head = text_of(app, "#summary-head")
        assert "cannot be resumed: start a new run" in head and "Press R" not in head


async def test_the_summary_shows_calibration_and_a_reliability_diagram(make_app, runs_root, trained_run):
    import shutil

    plain = runs_root / "20260101-110000-plain"  # 45 validation reviews: no temperature, and why
    shutil.copytree(trained_run[0].run_dir, plain)
    run = runs_root / "20260101-120000-calibrated"
    shutil.copytree(trained_run[0].run_dir, run)
    metrics = metrics_of(run)
    metrics["calibration"].update(temperature=1.8, applied=True, reason="applied: held-out log-loss 0.40 -> 0.30",
                                  ece_before=0.09, ece_before_ci=[0.05, 0.13], ece_after=metrics["test"]["ece"])
    (run / "metrics.json").write_text(json.dumps(metrics))
    calibration = metrics["calibration"]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        shown = text_of(app, "#summary-tables")
        assert "temperature 1.80 (fitted on validation)" in shown and "held-out log-loss 0.40 -> 0.30" in shown
        assert f"ECE 9.0% (95% CI 5.0%–13.0%) → {calibration['ece_after']:.1%}" in shown
        bins = metrics_of(run)["reliability"]
        assert shown.count("┃") == len(bins) + 1 and f"{bins[-1]['low']:.0%}–{bins[-1]['high']:.0%}" in shown  # one per bin, one in the key
        runs = [info.path for info in app.screen.runs]
        app.screen.query_one("#runs", DataTable).move_cursor(row=runs.index(plain), animate=False)
        await settle(pilot)
        await wait_for(pilot, lambda: app.screen.selected == plain and "no temperature" in text_of(
            app, "#summary-tables"))
        shown = text_of(app, "#summary-tables")
        assert "no temperature: not applied: the validation split has" in shown and "95% CI" in shown


async def test_the_errors_tab_explains_the_selected_misclassified_review(make_app, finished_runs):
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        row = screen.query_one("#errors").current
        assert row is not None
        await settle(pilot)
        shown = text_of(app, "#error-text")
        assert shown.startswith("Why the model said ")
        assert " ".join(str(row["text"]).split()).split()[0] in shown and "away:" in shown


async def test_p_pushes_the_selected_run_to_the_hub_and_a_refusal_keeps_the_dialog(make_app, finished_runs,
                                                                                   monkeypatch, tmp_path):
    import core.push
    from tests.core.test_push import FakeHub
    from tui.screens.push_modal import PushModal

    older, newer = finished_runs
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no saved login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(core.push, "hub_reachable", lambda: True)
    hub = FakeHub(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PushModal) and app.screen.run == newer
        await pilot.press(*"student/demo", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PushModal) and hub.uploads == []  # no token: said, and the name kept
        assert "no Hugging Face token found" in text_of(app, "#push-status")
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, PushModal)
        assert [u["repo"] for u in hub.uploads] == ["student/demo"] and "README.md" in hub.uploads[0]["files"]
        assert any("huggingface.co/student/demo" in str(n.message) for n in app._notifications)
