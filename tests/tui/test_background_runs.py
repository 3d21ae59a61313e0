"""Runs in other processes from the app: re-attach, Stop & save from an attached app, resume, background start."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Checkbox

from core.events import CheckpointSaved, StepLogged, read_events
from core.runs.store import Run, list_runs, run_info
from tests.core.test_background import _wait
from tests.tui.waiting import wait_for
from tui.screens.modals import ConfirmModal

CLI = [sys.executable, "-m", "core.cli"]
REPO = Path(__file__).resolve().parents[2]


def _start_detached(tiny_config, root, epochs):
    """A run in its own process, as `sentitune train --detach` starts it (without that command's own start-up)."""
    from core.training.background import start_detached

    return start_detached(tiny_config.replace(epochs=epochs), root)


def _steps(run):
    return [e for e in read_events(run / "events.jsonl") if isinstance(e, StepLogged)]


async def test_attach_shows_history_then_live_steps_and_stop_and_save_stops_it(make_app, runs_root, tiny_config):
    """Also: a resume (in the background or not) of the run while it trains is refused and changes nothing; the
    app's Stop & save reaches the run's process as the file and as SIGTERM, which its handler takes."""
    from core.errors import RunError
    from core.runs.control import stop

    run = _start_detached(tiny_config, runs_root, epochs=300)
    _wait(lambda: len(_steps(run)) >= 3 and run_info(run).status == "running", what="three steps")
    status = (run / "status.json").read_bytes()
    assert json.loads(status)["owner"] == "detached"
    for detach in (["--detach"], []):
        refused = subprocess.run(CLI + ["resume", str(run), *detach], cwd=REPO, capture_output=True, text=True)
        assert refused.returncode == 2 and "still running in another process" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert (run / "status.json").read_bytes() == status
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(app.seen_notifications) > 0)
        assert any("training in other processes" in (n.title or "") for n in app.seen_notifications)
        await pilot.press("f4")
        await wait_for(pilot, lambda: getattr(app.screen, "selected", None) == run)
        await pilot.press("a")
        await wait_for(pilot, lambda: app.progress.started is not None and len(app.progress.train_loss) >= 3)
        assert app.current_mode == "train" and app.live.run_dir == run and not app.live.in_process
        first = app.progress.step
        await wait_for(pilot, lambda: app.progress.step > first)  # new steps arrive live
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and bool(app.screen.query("#yes")))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.progress.status == "stopped")
        await wait_for(pilot, lambda: not app.training)
    assert run_info(run).status == "stopped" and run_info(run).has_model
    assert "stopping: it stops at its next step" in (run / "process.log").read_text()  # its SIGTERM handler spoke
    assert _steps(run)[-1].total_steps > Run(run).metrics["global_step"]
    with pytest.raises(RunError, match="is not running"):
        stop(run)


async def test_interrupted_run_is_resumed_from_the_report(make_app, runs_root, tiny_config):
    run = _start_detached(tiny_config, runs_root, epochs=4)
    _wait(lambda: len([e for e in read_events(run / "events.jsonl") if isinstance(e, CheckpointSaved)]) >= 2,
          what="two checkpoints")
    os.kill(json.loads((run / "status.json").read_text())["pid"], signal.SIGKILL)
    _wait(lambda: run_info(run).status == "interrupted", what="the killed run to show as interrupted")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None
                        and app.screen.report.info.status == "interrupted")
        head = str(app.screen.query_one("#summary-head").render())
        assert "Press R to resume" in head
        await pilot.press("R")
        await wait_for(pilot, lambda: app.progress.status == "finished")
        assert app.progress.train_loss[0][0] <= 2  # the history from before the kill is on the chart
    info = run_info(run)
    assert info.status == "finished" and info.has_model


async def test_start_in_background_then_stop_at_once_stops_its_process(make_app, runs_root, tiny_config):
    """F2's in background starts a process (shown as starting at once); Stop & save pressed before its folder
    is known reaches it the moment it is, and the app follows the process to its end."""
    app = make_app(tiny_config.replace(epochs=300))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        app.screen.query_one("#background", Checkbox).value = True
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))  # the plan, asked once
        assert "background process" in app.screen.question
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.training)
        assert "Starting" in str(app.screen.query_one("#status-line").render())  # at once, before any event
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and bool(app.screen.query("#yes")))
        assert "it stops before training begins" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.training, timeout=90)  # followed to its end, not just left
        assert app.progress.status == "stopped" and "another process" not in app.sub_title
        said = [n.message for n in app.seen_notifications if n.title == "Stop & save"]
        assert len(said) == 1 and ("nothing will be trained" in said[0] or "stops before training begins" in said[0])
    info = list_runs(runs_root)[0]
    assert info.status == "stopped" and "before training began" in info.error
    assert json.loads((info.path / "status.json").read_text())["pid"] != os.getpid()
