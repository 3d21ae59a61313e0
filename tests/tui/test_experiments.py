"""The app's experiments: a list in an F2 field starts a sweep, F3 says which of its runs is training, F4's
Sweep tab ranks its runs; ctrl+f on F2 finds a learning rate and fills the field."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from textual.widgets import Button, DataTable, Input, TabbedContent

from core.experiments.record import read_sweep
from tests.tui.waiting import wait_for
from tui.screens.modals import ConfirmModal
from tui.screens.params_screen import ParamsScreen

CLI = [sys.executable, "-m", "core.cli"]
REPO = Path(__file__).resolve().parents[2]


async def _field(pilot, name: str, text: str) -> None:
    widget = pilot.app.screen.query_one(f"#field-{name}", Input)
    widget.focus()
    widget.value = text
    await pilot.pause()  # the input's change reaches the form...
    await pilot.pause()  # ...and the form's Edited the screen


def _sweep_points():
    """(points, hook): the hook, given to run_test, records each SweepPoint message as (index, total)."""
    from tui.messages import SweepPoint

    points = []

    def seen(message) -> None:
        if isinstance(message, SweepPoint):
            points.append((message.index, message.total))
    return points, seen


async def _ask_for_sweep(pilot, field: str, text: str, background: bool = False) -> str:
    """On F2, put a list in `field` and press ctrl+t; returns the question the app asks before the sweep."""
    from textual.widgets import Checkbox

    await pilot.press("f2")
    await pilot.pause()
    await _field(pilot, field, text)
    if background:
        pilot.app.screen.query_one("#background", Checkbox).value = True
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
    return pilot.app.screen.question


async def test_a_list_in_a_field_runs_a_sweep_shown_on_f3_and_ranked_on_f4(make_app, tiny_config):
    app = make_app(tiny_config.replace(epochs=1, baseline=False))
    points, seen = _sweep_points()
    async with app.run_test(size=(100, 30), message_hook=seen) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ParamsScreen)
        await _field(pilot, "learning_rate", "1e-4, 5e-3")
        await wait_for(pilot, lambda: str(screen.query_one("#start", Button).label) == "Start sweep (2 runs)")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "sweep of 2 runs" in app.screen.question and "learning_rate over 1e-4, 0.005" in app.screen.question
        await pilot.press("y")
        # The app may handle a backlog of a fast run's messages at once: its SweepPoint is recorded, seen or not.
        await wait_for(pilot, lambda: points or app.sweep is not None)
        # F3 and the header say which run of the sweep is training.
        await wait_for(pilot, lambda: not app.training or app.sweep is not None and (
            f"sweep run {app.sweep.index}/2" in app.sub_title and f"Sweep run {app.sweep.index} of 2 (learning_rate="
            in str(app.screen.query_one("#status-line").render())), timeout=30)
        await wait_for(pilot, lambda: not app.training)
        await pilot.pause()
        assert points == [(1, 2), (2, 2)] and app.sweep is None
        assert any("best by validation macro F1: learning_rate=0.005" in n.message for n in app.seen_notifications)
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.current_mode == "report" and app.screen.report is not None)
        await pilot.press("5")
        await pilot.pause()
        table = app.screen.query_one("#sweep-runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert str(table.get_row_at(0)[0]) == "★" and str(table.get_row_at(0)[1]) == "0.005"
        table.focus()
        await pilot.press("down")
        await wait_for(pilot, lambda: table.cursor_row == 1)
        await pilot.press("enter")  # open the other run of the sweep
        await wait_for(pilot, lambda: app.screen.report is not None and app.screen.selected.name == str(
            table.get_row_at(1)[-1]))
        assert app.screen.query_one(TabbedContent).active == "tab-summary"


async def test_p_in_the_sweep_question_starts_a_pruned_sweep(make_app, tiny_config):
    """The question offers pruning: p records the sweep with it, and its runs are evaluated four times an epoch."""
    app = make_app(tiny_config.replace(epochs=1, baseline=False))
    async with app.run_test(size=(100, 30)) as pilot:
        question = await _ask_for_sweep(pilot, "learning_rate", "1e-4, 5e-3")
        assert "Pruning stops a run as soon as it falls behind" in question
        assert "Start, pruning (p)" in [str(b.label) for b in app.screen.query(Button)]
        await pilot.press("p")
        await wait_for(pilot, lambda: app.training)
        await wait_for(pilot, lambda: not app.training, timeout=60)
        (path,) = app.runs_root.glob("sweep-*.json")
        record = read_sweep(path)
        assert record["prune"] is True and len(record["points"]) == 2
        first = json.loads((Path(record["points"][0]["run_dir"]) / "config.json").read_text())["config"]
        assert first["eval_steps"] > 0  # a quarter of its epoch


async def test_ctrl_f_finds_a_learning_rate_and_fills_the_field(make_app, monkeypatch):
    from core.experiments import lr_find
    from tui.screens.lr_find_modal import LrFindModal

    monkeypatch.setattr(lr_find, "STEPS", 200)  # the tiny model learns in a narrow band: test it finely
    monkeypatch.setattr(lr_find, "START_LR", 1e-5)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindModal))
        modal = app.screen
        use = modal.query_one("#lr-use", Button)
        await wait_for(pilot, lambda: not modal.running)
        assert not use.disabled and modal.suggestion is not None and 5e-4 < modal.suggestion < 5e-2
        assert f"{modal.suggestion:.1e}" in str(use.label)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ParamsScreen)
        expected = float(f"{modal.suggestion:.2g}")
        await wait_for(pilot, lambda: app.config.learning_rate == expected)
        assert app.screen.query_one("#field-learning_rate", Input).value == f"{expected:g}"


async def test_a_sweep_in_background_runs_in_its_own_process_and_the_app_follows_each_run(make_app, tiny_config):
    import json
    import os

    app = make_app(tiny_config.replace(epochs=1, baseline=False))
    points, seen = _sweep_points()
    async with app.run_test(size=(100, 30), message_hook=seen) as pilot:
        question = await _ask_for_sweep(pilot, "epochs", "1, 2", background=True)
        assert "sweep of 2 runs" in question and "background process" in question
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.training)
        await wait_for(pilot, lambda: not app.training)
        await pilot.pause()
    assert points == [(1, 2), (2, 2)]
    (record,) = app.runs_root.glob("sweep-*.json")
    data = read_sweep(record)
    assert data["status"] == "finished" and data["workers"] == []
    for point in data["points"]:  # trained by the sweep's process, not the app's
        status = json.loads((app.runs_root / point["run_dir"] / "status.json").read_text())
        assert status["status"] == "finished" and status["pid"] != os.getpid()


async def test_a_list_being_typed_is_one_value_until_the_second_and_a_bad_one_is_a_field_error(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        screen = app.screen
        start = screen.query_one("#start", Button)
        await _field(pilot, "learning_rate", "1e-4,")  # the comma typed, the next value not yet
        assert str(start.label) == "Start training" and not start.disabled and app.config.learning_rate == 1e-4
        await _field(pilot, "learning_rate", "1e-4, fast")
        assert start.disabled and "must be a number, not 'fast'" in str(
            screen.query_one("#row-learning_rate .field-error").render())
        await _field(pilot, "learning_rate", "1e-4, 3e-4, 1e-3")
        await _field(pilot, "epochs", "1,2")
        await wait_for(pilot, lambda: str(start.label) == "Start sweep (6 runs)", timeout=10)
        assert not start.disabled
        await _field(pilot, "max_samples", "100, 200")  # the data may not vary between a sweep's runs
        assert start.disabled and "keeps the data, its split and its scoring the same" in str(
            screen.query_one("#row-max_samples .field-error").render())


async def test_a_stop_answered_after_the_sweep_moved_on_stops_nothing(make_app, tiny_config):
    from tui.messages import SweepPoint

    app = make_app(tiny_config.replace(epochs=500, baseline=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await _ask_for_sweep(pilot, "learning_rate", "1e-3, 5e-3")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.sweep is not None and app.progress.stage == "train")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Stop the sweep now, in its run 1 of 2?" in app.screen.question
        assert "No further run of the sweep starts" in app.screen.question
        # The sweep moves on behind the open dialog (as when run 1 ends): the answer must not stop run 2.
        app.post_message(SweepPoint(app.sweep.sweep, 2, 2, {"learning_rate": 5e-3}))
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: any("ended before you answered" in n.message for n in app.seen_notifications))
        assert not app.live.stop_event.is_set() and app.training
        # Stopped from another shell: the stop file reaches the sweep's run in this app (never a signal, which
        # would end the app), and no further run starts.
        sweep = Path(app.sweep.sweep)
        out = await asyncio.to_thread(subprocess.run, CLI + ["stop", sweep.stem, "--output-dir", str(sweep.parent)],
                                      cwd=REPO, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        await wait_for(pilot, lambda: not app.training)
        await pilot.pause()
        assert app.is_running and any(n.title == "Sweep stopped" for n in app.seen_notifications)
    record = read_sweep(sweep)
    assert record["status"] == "stopped" and [p["status"] for p in record["points"]] == ["stopped", "pending"]


async def test_r_on_the_sweep_tab_goes_on_with_a_stopped_sweep(make_app, tiny_config, runs_root):
    import threading

    from core.experiments.plan import parse_grid, plan_points
    from core.experiments.record import create_sweep, read_sweep
    from core.experiments.worker import run_sweep

    config = tiny_config.replace(epochs=1, baseline=False)
    grid = parse_grid(["learning_rate=1e-3,5e-3"])
    path = create_sweep(config, grid, plan_points(grid), runs_root)
    stop = threading.Event()
    run_sweep(path, on_point=lambda k, n, p: k == 2 and stop.set(), stop_event=stop)  # stopped as run 2 starts
    assert [p["status"] for p in read_sweep(path)["points"]] == ["finished", "pending"]
    app = make_app(config.replace(epochs=3))  # what F2 holds must not change the sweep's runs
    points, seen = _sweep_points()
    async with app.run_test(size=(100, 30), message_hook=seen) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.current_mode == "report" and app.screen.report is not None)
        await pilot.press("5")
        await wait_for(pilot, lambda: "1 run left to do: R goes on with the sweep" in str(
            app.screen.query_one("#sweep-head").render()))
        await pilot.press("R")
        await wait_for(pilot, lambda: points == [(2, 2)])
        await wait_for(pilot, lambda: not app.training)
        await pilot.pause()
        assert any("2 of 2 runs finished" in n.message for n in app.seen_notifications)
    record = read_sweep(path)
    assert record["status"] == "finished" and all(p["status"] == "finished" for p in record["points"])
    run_config = json.loads((Path(record["points"][1]["run_dir"]) / "config.json").read_text())["config"]
    assert run_config["epochs"] == 1 and run_config["learning_rate"] == 5e-3


async def test_ctrl_f_with_a_list_in_a_field_says_which_value_the_test_uses(make_app, monkeypatch):
    from core.experiments import lr_find
    from tui.screens.lr_find_modal import LrFindModal

    monkeypatch.setattr(lr_find, "STEPS", lr_find.MAX_STEPS)  # still running while the test looks at it
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        await _field(pilot, "batch_size", "4, 16")
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindModal))
        assert any(n.message == "The test uses batch_size=4, the first value of each list." for n in
                   app.seen_notifications)
        assert app.screen.config.batch_size == 4 and app.screen.running
        modal = app.screen
        dataset = Path(modal.config.dataset).name
        assert f"on {dataset}, batch 4" in " ".join(str(s.render()) for s in modal.query(".dialog-text"))
        await wait_for(pilot, lambda: modal.drawn >= 2, timeout=60)  # the curve grows while the test runs
        assert modal.running and modal.drawn <= len(modal.points) < lr_find.MAX_STEPS
        assert app.screen.focused is None  # Enter closes nothing while the test runs
        await pilot.press("enter")
        assert isinstance(app.screen, LrFindModal)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen))


async def test_a_pruned_run_is_said_on_f3_and_listed_as_pruned_on_the_sweep_tab(make_app, tiny_config, runs_root):
    from core.events import TrainingStopped
    from core.experiments.plan import parse_grid, plan_points
    from core.experiments.record import create_sweep
    from core.experiments.worker import run_sweep
    from tui.messages import SweepPointEnded, TrainingEvent

    config = tiny_config.replace(baseline=False, epochs=2)
    grid = parse_grid(["learning_rate=5e-3,3e-3,1e-8"])  # the last learns nothing: pruned within its first epoch
    path = create_sweep(config, grid, plan_points(grid), runs_root, prune=True)
    ended = []
    run_sweep(path, on_done=lambda k, n, p: ended.append((k, p["status"], p["pruned"])))
    assert [(k, s) for k, s, _ in ended] == [(1, "finished"), (2, "finished"), (3, "pruned")]
    pruned_run = read_sweep(path)["points"][2]["run_dir"]
    app = make_app(config)
    async with app.run_test(size=(120, 40)) as pilot:
        app.post_message(TrainingEvent(TrainingStopped(run_dir=pruned_run, step=12, test=None, saved=True)))
        app.post_message(SweepPointEnded(3, 3, "pruned", Path(pruned_run).name, ended[2][2]))
        await pilot.press("f3")
        await wait_for(pilot, lambda: "Pruned: pruned after epoch 0." in str(
            app.screen.query_one("#status-line").render()))
        assert any("Sweep run 3 of 3 pruned" in n.message for n in app.seen_notifications)
        app.newest_run = Path(pruned_run)
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.current_mode == "report" and app.screen.report is not None)
        await pilot.press("5")
        await wait_for(pilot, lambda: "1 pruned: stopped early" in str(app.screen.query_one("#sweep-head").render()))
        table = app.screen.query_one("#sweep-runs", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[2] for r in rows] == ["finished", "finished", "pruned"]
        assert rows[2][3] != "—"  # its validation figure so far is shown (not ranked)
