"""F4's Data tab: the data doctor's findings for the selected run, decisions, and the cleaned copy opened on F2."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.tiny import reviews_frame, train_on_rows
from tests.tui.waiting import wait_for


@pytest.fixture(scope="module")
def copied_run(tmp_path_factory, tiny_model):
    """A tiny run whose data holds one review in ten near copies (some land in validation or test: leaks)."""
    frame = reviews_frame(200, seed=3)
    rows = frame.to_dict("records") + [
        {"text": f"the plot was superb and the music felt wonderful {'!' * (k + 1)}", "label": "positive"}
        for k in range(10)]
    return train_on_rows(rows, tmp_path_factory.mktemp("copied"), tiny_model, max_length=32, epochs=2,
                         baseline=False)


def _doctor_table(app):
    from tui.widgets.report_data import DoctorTable

    return app.screen.query_one(DoctorTable)


async def _open_data_tab(pilot):
    """F4, its Data tab, and the doctor's findings for the selected run once listed."""
    await pilot.press("f4")
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "report", None) is not None)
    await pilot.press("6")
    table = _doctor_table(pilot.app)
    await wait_for(pilot, lambda: table.row_count > 0, timeout=60)
    return table


async def test_the_data_tab_lists_findings_and_writes_the_accepted_ones_for_f2(make_app, runs_root, copied_run):
    run = shutil.copytree(copied_run, runs_root / copied_run.name)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        table = await _open_data_tab(pilot)
        kinds = {f.kind for f in table.findings}
        assert "leak" in kinds or "near_duplicate" in kinds
        shown = app.screen.query_one("#data-text")
        await wait_for(pilot, lambda: "Why the model says" in str(shown.render()), timeout=60)
        assert table.findings[0].reason in str(shown.render())
        table.focus()
        await pilot.press("w")
        await wait_for(pilot, lambda: any("Accept rows first" in n.message for n in app.seen_notifications))
        await pilot.press("y")
        assert table.decisions[0] is True and str(table.get_cell_at((0, 0))) == "✓"
        await pilot.press("n")
        assert table.decisions[1] is False
        await pilot.press("w")
        await wait_for(pilot, lambda: app.current_mode == "params", timeout=30)
        source = json.loads((run / "config.json").read_text())["config"]["dataset"]
        assert app.config.dataset.endswith(".clean.csv") and app.config.dataset != source
        assert app.config.epochs == 2 and app.config.max_length == 32  # the run's recipe, not the app's settings
        changes = json.loads(open(app.config.dataset + ".changes.json").read())["changes"]
        assert [c["row"] for c in changes] == [table.findings[0].row]  # only the accepted one


async def test_f_judges_training_labels_out_of_sample_and_f_again_stops(make_app, runs_root, copied_run,
                                                                         monkeypatch):
    import core.folds
    import tui.widgets.report_data as report_data
    from core.folds import FILE

    monkeypatch.setattr(report_data, "FOLDS", 2)
    real_fit, holding = core.folds._fit, {"first": True}

    def held_fit(*args, stop=None, **kwargs):  # the first fold waits for the stop (a tiny fold ends too soon)
        if holding.pop("first", False):
            stop.wait(timeout=60)
        return real_fit(*args, stop=stop, **kwargs)

    monkeypatch.setattr(core.folds, "_fit", held_fit)
    run = shutil.copytree(copied_run, runs_root / copied_run.name)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = await _open_data_tab(pilot)
        before = list(table.findings)
        count = app.screen.query_one("#data-count")
        assert "f judge training labels out of sample" in str(count.render())
        table.focus()
        await pilot.press("f")
        await wait_for(pilot, lambda: "fold 1/2" in str(count.render()), timeout=60)
        await pilot.press("f")  # stop: nothing kept, the findings come back
        await wait_for(pilot, lambda: "suspicious rows" in str(count.render()), timeout=60)
        assert not (run / FILE).exists() and table.findings == before
        table.focus()
        await pilot.press("f")
        await wait_for(pilot, lambda: "2-fold out-of-sample" in str(count.render()), timeout=120)
        assert (run / FILE).exists()


def test_snapshot_data_tab(snap_compare, make_app, finished_runs, monkeypatch):
    """The tab's layout with fixed findings (scores from a real run vary in their last digits across machines)."""
    import core.doctor as doctor

    fixed = doctor.Diagnosis([
        doctor.Finding("validation", 12, "great plot great actors", "positive", None, 0.97, "leak",
                       "97% similar to training row 88: the model may have learned it there"),
        doctor.Finding("test", 41, "the ending was superb and the music wonderful", "negative", "positive", 0.93,
                       "label_error", "the model (which never trained on it) gives its label 7% and positive 93%"),
        doctor.Finding("train", 7, "it was quite dull but the actors were brilliant", "positive", None, 0.31,
                       "ambiguous", "the model never settled on it"),
    ], test_accuracy=0.9, test_accuracy_without_leaks=0.89, leaked_test_rows=1)
    monkeypatch.setattr(doctor, "diagnose", lambda run, **kwargs: fixed)
    import core.explain
    from tests.tui.fake_runs import fixed_explanation

    monkeypatch.setattr(core.explain, "explain", lambda predictor, text: fixed_explanation(text))

    async def open_tab(pilot):
        await pilot.press("f4")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "report", None) is not None)
        await pilot.press("6")
        await wait_for(pilot, lambda: _doctor_table(pilot.app).row_count == 3)
        await wait_for(pilot, lambda: "Why the model says" in str(pilot.app.screen.query_one("#data-text").render()))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=open_tab)
