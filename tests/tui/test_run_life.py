"""The app where a run's life meets other processes: stopped from another shell, stopped while its process
starts, attached to after a resume, and the runs folder changing behind it."""

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

from textual.widgets import RichLog, Select

from core.events import StageChanged
from core.runs.store import Run, run_info
from tests.core.test_run_life import _stopped_after_first_checkpoint
from tests.tui.fake_runs import write_fake_run
from tests.tui.test_report_screen import text_of
from tests.tui.waiting import wait_for
from tui.live import Kind, LiveView
from tui.messages import TrainingEvent

CLI = [sys.executable, "-m", "core.cli"]
REPO = Path(__file__).resolve().parents[2]


async def _cli(*args) -> subprocess.CompletedProcess:
    """A command in another process, while the app goes on running."""
    return await asyncio.to_thread(subprocess.run, CLI + list(args), cwd=REPO, capture_output=True, text=True,
                                   timeout=120)


async def test_sentitune_stop_from_another_shell_stops_the_apps_run_and_the_app_lives_on(make_app, tiny_config):
    app = make_app(tiny_config.replace(epochs=300))
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await wait_for(pilot, lambda: app.progress.stage == "train" and app.progress.step >= 2)
        run = Path(app.progress.run_dir)
        assert json.loads((run / "status.json").read_text())["owner"] == "app"
        out = await _cli("stop", str(run))  # once SIGTERM to this very process: the app died with it
        assert out.returncode == 0 and "it stops at its next step" in out.stdout, out.stderr
        await wait_for(pilot, lambda: app.progress.status == "stopped" and not app.training)
        assert app.is_running
        await pilot.pause(0.6)  # a throttled redraw away
        assert "Saved model: the checkpoint of step" in str(app.screen.query_one("#figures").render())
    assert run_info(run).status == "stopped" and run_info(run).has_model


async def test_stop_while_a_background_sweep_starts_stops_the_sweep(make_app, tiny_config, runs_root):
    from core.experiments.record import list_sweeps, read_sweep

    app = make_app(tiny_config.replace(epochs=300))
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_sweep(app.config, {"learning_rate": [5e-3, 1e-3]}, detached=True)
        app.stop_now()
        await wait_for(pilot, lambda: not app.training, timeout=90)
    record = read_sweep(list_sweeps(runs_root)[0])
    assert record["status"] == "stopped"
    assert all(p["status"] != "finished" for p in record["points"])


def test_a_background_sweeps_stop_goes_to_the_sweep_between_its_runs(tmp_path, tiny_config):
    """F3 shows the sweep's finished run 1 while run 2 is not named yet: the stop is the sweep's, not run 1's."""
    from core.experiments.record import create_sweep, stop_file, worker_lock
    from core.runs.lock import RunLock

    path = create_sweep(tiny_config, {"learning_rate": [5e-3, 1e-3]}, [{"learning_rate": 5e-3},
                                                                       {"learning_rate": 1e-3}], tmp_path)
    finished = write_fake_run(tmp_path, "20260101-120000-tiny-reviews")
    live = LiveView(Kind.SWEEP_PROCESS, run_dir=finished, sweep=path)
    with RunLock(path=worker_lock(path, "elsewhere-1")):  # the sweep's worker holds it
        assert live.ask_stop("train")  # to be sent to the sweep's process, by a worker
        assert "asked sweep" in live.deliver()
    assert stop_file(path).exists()
    assert run_info(finished).status == "finished" and not (finished / "stop.request").exists()


async def test_attach_follows_a_resumed_run_past_its_earlier_stop(make_app, tiny_config, runs_root):
    """`sentitune attach` and F4's a, on a stopped run resumed in the background: both follow the resumed
    training to its end; the earlier stop is history, not the end (and is not announced again)."""
    from core.training.background import start_detached

    run = _stopped_after_first_checkpoint(tiny_config.replace(epochs=4), runs_root)
    start_detached(None, runs_root, resume_run=run)
    attach = subprocess.Popen(CLI + ["attach", str(run), "--json"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: getattr(app.screen, "selected", None) == run)
        await pilot.press("a")
        await wait_for(pilot, lambda: app.training or app.progress.status == "finished")
        await wait_for(pilot, lambda: app.progress.status == "finished" and not app.training)
        assert not any(n.title == "Run stopped" for n in app.seen_notifications)
    out, err = await asyncio.to_thread(attach.communicate, timeout=120)
    names = [json.loads(line)["event"] for line in out.splitlines()]
    assert attach.returncode == 0, err
    assert names.index("TrainingStopped") < names.index("Resumed") and names[-1] == "TrainingFinished"


async def test_f5_takes_the_latest_finished_run_and_sees_an_export_made_elsewhere(make_app, runs_root, trained_run):
    model = trained_run[0].run_dir / "model"
    finished = write_fake_run(runs_root, "20260101-120000-tiny-reviews", model_dir=model, created=1_790_000_000.0)
    stopped = write_fake_run(runs_root, "20260102-120000-tiny-reviews", status="stopped", created=1_790_086_400.0)
    shutil.copytree(model, stopped / "model")  # newer, with a model, but stopped
    app = make_app(watch_seconds=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        picker = app.screen.query_one("ModelPicker")
        await wait_for(pilot, lambda: picker.predictor is not None)
        assert Path(picker.predictor.model_dir).parent == finished
        export = finished / "onnx"  # what `sentitune export` writes, made by another process
        export.mkdir()
        (export / "model.onnx").write_bytes(b"onnx")
        (export / "export.json").write_text(json.dumps({"quantized": True, "model_stamp": [1, 2]}))
        select = picker.query_one(Select)
        await wait_for(pilot, lambda: any("ONNX int8 (older than the model)" in str(label)
                                          for label, _ in select._options), timeout=20)


async def test_the_report_says_which_evaluation_the_saved_model_comes_from(make_app, runs_root, trained_run):
    run = runs_root / trained_run[0].run_dir.name
    shutil.copytree(trained_run[0].run_dir, run)
    kept = Run(run).metrics["kept"]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None)
        head = str(app.screen.query_one("#summary-head").render())
        assert f"Saved model: the checkpoint of step {kept['step']}, epoch {kept['epoch']:.2f}" in head
        tables = text_of(app, "#summary-tables")
        assert "Where the time went" in tables and "training steps" in tables and "total" in tables


async def test_the_dashboard_log_keeps_up_past_the_lines_it_keeps(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        for i in range(260):
            app.post_message(TrainingEvent(StageChanged("data", f"line {i}")))
        log = app.screen.query_one("#log", RichLog)
        await wait_for(pilot, lambda: log.lines and log.lines[-1].text.strip() == "[data] line 259", timeout=20)
