"""A run's life where its parts meet: stop, follow and resume across the command line, detached processes and
sweeps, with one owner (core.runs.control) and the lock as the only truth. Real processes where several meet."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import RunError
from core.events import CheckpointSaved, StageChanged, StepLogged, TrainingStarted
from core.runs import control
from core.runs.lock import RunLock
from core.runs.store import Run, run_info
from tests.core.test_background import CLI, REPO


def _cli(*args, **kwargs):
    return subprocess.run(CLI + list(args), cwd=REPO, capture_output=True, text=True, timeout=120, **kwargs)


def _stopped_after_first_checkpoint(config, root: Path) -> Path:
    """A run trained here and stopped at its first checkpoint: saved, tested and calibrated, resumable."""
    from core.training.train import train

    stop = threading.Event()
    result = train(config, root, stop_event=stop,
                   on_event=lambda e: stop.set() if isinstance(e, CheckpointSaved) else None)
    assert result.status == "stopped"
    return result.run_dir


def _fake_run(root: Path, status: dict, events: list[str] = ()) -> Path:
    run = root / "20260101-000000-fake"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"model": "m", "dataset": "d.csv"}, "created": 1.0}))
    (run / "status.json").write_text(json.dumps(status))
    (run / "events.jsonl").write_text("".join(line + "\n" for line in events))
    return run


def test_stop_says_what_happens_from_the_whole_event_history(tmp_path):
    """A run training for a while has its StageChanged(train) far back in events.jsonl (item 5)."""
    step = json.dumps(StepLogged(step=1, total_steps=9, epoch=0.1, loss=0.7, learning_rate=1e-5, grad_norm=1.0,
                                 samples_per_second=10.0, elapsed=1.0, eta=1.0).to_dict())
    events = [json.dumps(StageChanged("data", "loading").to_dict()), json.dumps(StageChanged("train", "training").to_dict())]
    run = _fake_run(tmp_path, {"status": "running", "pid": os.getpid(), "owner": "app"}, events + [step] * 2000)
    assert (run / "events.jsonl").stat().st_size > 200_000
    with RunLock(run):
        message = control.stop(run)
    assert "it stops at its next step; the model so far will be evaluated, tested and saved" in message
    assert (run / "stop.request").exists()


def test_a_starting_run_is_live_while_its_lock_is_held_however_long_it_takes(tmp_path):
    """No age limit decides a start is dead (item 6), and asking it to stop never waits (item 7)."""
    run = _fake_run(tmp_path, {"status": "starting", "updated": time.time() - 3600, "pid": 1, "owner": "detached"})
    with RunLock(run):
        assert run_info(run).status == "starting"

        def no_waiting(seconds):
            raise AssertionError("stop waited")

        real_sleep, time.sleep = time.sleep, no_waiting
        try:
            message = control.stop(run)
        finally:
            time.sleep = real_sleep
        assert "stops before training begins" in message and (run / "stop.request").exists()
        assert json.loads((run / "status.json").read_text())["status"] == "starting"  # only its owner writes it
    assert run_info(run).status == "interrupted"  # the lock went: nothing holds the run


def test_stop_signals_only_a_process_proven_to_hold_the_run(tmp_path):
    """A pid in status.json may belong to anyone by now (item 11)."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = _fake_run(tmp_path / "a", {"status": "starting", "child_pid": bystander.pid, "pid": bystander.pid,
                                         "updated": time.time(), "owner": "detached"})
        refused = _cli("stop", str(run))
        assert refused.returncode == 2 and "not running (it is interrupted)" in refused.stderr
        assert json.loads((run / "status.json").read_text())["status"] == "starting"

        run = _fake_run(tmp_path / "b", {"status": "running", "pid": bystander.pid, "owner": "cli"})
        with RunLock(run):  # held here, not by the bystander
            assert _cli("stop", str(run)).returncode == 0
        assert (run / "stop.request").exists()

        finished = _fake_run(tmp_path / "c", {"status": "finished", "pid": bystander.pid, "owner": "cli"})
        before = (finished / "status.json").read_bytes()
        assert "not running (it is finished)" in _cli("stop", str(finished)).stderr
        assert (finished / "status.json").read_bytes() == before
        time.sleep(0.2)
        assert bystander.poll() is None  # never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_resumed_segment_keeps_only_what_belongs_to_its_model(tiny_config, tmp_path, monkeypatch):
    """A resume stopped during its test: the newer model keeps its own temperature, no older test predictions,
    and the run's training time adds up (items 8 and 13); evaluate then records the test it lacks."""
    from core.cli import main
    from core.training.train import resume

    # The tiny run's 45 validation reviews are too few for a temperature: here one is always applied.
    monkeypatch.setattr("core.training.calibration.MIN_REVIEWS", 1)
    monkeypatch.setattr("core.training.calibration.MIN_GAIN", -1e9)

    run = _stopped_after_first_checkpoint(tiny_config.replace(epochs=3), tmp_path / "runs")
    first = Run(run).metrics
    assert first["test"] is not None and (run / "test_predictions.jsonl").exists()
    first_calibration = (run / "model" / "calibration.json").stat().st_mtime_ns

    stop = threading.Event()

    def stop_in_the_test(event):
        if isinstance(event, StageChanged) and event.detail.startswith("scoring the fine-tuned model"):
            stop.set()

    result = resume(run, on_event=stop_in_the_test, stop_event=stop)
    assert result.status == "stopped" and result.test is None
    metrics = Run(run).metrics
    assert metrics["test"] is None and metrics["global_step"] > first["global_step"]
    assert (run / "model" / "calibration.json").stat().st_mtime_ns > first_calibration
    calibration = json.loads((run / "model" / "calibration.json").read_text())
    assert calibration["step"] == metrics["kept"]["step"]  # fitted on this model before the stop
    assert calibration["temperature"] == metrics["calibration"]["temperature"]
    assert not (run / "test_predictions.jsonl").exists()  # the older model's mistakes are not this one's
    assert metrics["train_runtime"] > first["train_runtime"]
    assert "sentitune evaluate RUN tests the saved model" in Run(run).status["error"]

    assert main(["evaluate", str(run)]) == 0
    metrics = Run(run).metrics
    assert metrics["test"]["n"] == len(Run(run).test_predictions()) > 0
    assert {"temperature", "ece_before", "ece_after"} <= set(metrics["calibration"])
    assert Run(run).status["error"] is None and Run(run).status["status"] == "stopped"


def test_resume_in_a_folder_it_cannot_write_is_one_line(trained_run, tmp_path, monkeypatch):
    """A read-only run folder (item 13): clearing the old stop request fails, said in one line."""
    import shutil

    from core.training.train import resume

    run = tmp_path / "run"
    shutil.copytree(trained_run[0].run_dir, run)
    checkpoint = run / "checkpoints" / "checkpoint-1"
    checkpoint.mkdir(parents=True)
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt", "model.safetensors"):
        (checkpoint / name).write_text("{}")
    (run / "stop.request").touch()
    real_unlink = Path.unlink

    def read_only(path, missing_ok=False):
        if path.name == "stop.request":
            raise OSError(30, "Read-only file system")
        return real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(RunError) as error:
        resume(run)
    assert "cannot write in run run (Read-only file system)" in str(error.value)
    assert len(str(error.value).splitlines()) == 1


def test_a_stop_between_two_runs_of_a_sweep_starts_no_further_run(tiny_config, tmp_path):
    """The record names run 2 only after the stop was asked: the sweep still ends before training it (item 3)."""
    from core.experiments.record import create_sweep, read_sweep, request_sweep_stop
    from core.experiments.worker import run_sweep

    root = tmp_path / "runs"
    path = create_sweep(tiny_config.replace(epochs=1), {"learning_rate": [5e-3, 1e-3]},
                        [{"learning_rate": 5e-3}, {"learning_rate": 1e-3}], root)

    def between(k, n, point):
        if k == 2:
            assert "asked sweep" in request_sweep_stop(path)

    record = run_sweep(path, on_point=between)
    assert [p["status"] for p in record["points"]] == ["finished", "pending"]
    assert record["status"] == "stopped" and record["points"][1]["run_dir"] is None
    assert len([p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 1
    assert read_sweep(path)["status"] == "stopped"


@pytest.mark.parametrize("owner", ["app", "sweep"])
def test_a_run_in_a_process_that_takes_no_sigterm_is_stopped_by_file_only(tmp_path, owner):
    """The app's process (and a sweep's) would die of a signal: the stop file reaches its run (item 1)."""
    run = _fake_run(tmp_path, {"status": "running", "pid": os.getpid(), "owner": owner},
                    [json.dumps(StageChanged("train", "training").to_dict())])
    received = []
    previous = signal.signal(signal.SIGTERM, lambda *a: received.append(a))
    try:
        with RunLock(run):
            message = control.stop(run)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not received and (run / "stop.request").exists()
    assert ("a run of a sweep" in message) == (owner == "sweep")


def test_following_goes_on_past_an_earlier_segments_end_while_the_run_is_held(tmp_path):
    """A stopped run being resumed: its old final event ends a segment, not the following (item 2)."""
    lines = [json.dumps(StageChanged("train", "training").to_dict()),
             json.dumps({"event": "TrainingStopped", "run_dir": "x", "step": 4, "test": None, "saved": True})]
    run = _fake_run(tmp_path, {"status": "starting", "owner": "detached"}, lines)
    lock = RunLock(run).acquire()

    def resumed_segment():
        time.sleep(0.3)
        with open(run / "events.jsonl", "a") as fh:
            fh.write(json.dumps({"event": "Resumed", "step": 4, "checkpoint": "checkpoint-4"}) + "\n")
            fh.write(json.dumps(TrainingStarted(run_dir="x", model="m", dataset="d", device="cpu", precision="fp32",
                                                epochs=1, total_steps=8, steps_per_epoch=8, effective_batch=8,
                                                samples={}, label_names=[]).to_dict()) + "\n")
            fh.write(json.dumps({"event": "TrainingFinished", "run_dir": "x", "test": {}, "train_runtime": 1.0,
                                 "train_samples_per_second": 1.0}) + "\n")
        lock.release()

    threading.Thread(target=resumed_segment).start()
    follower = control.EventFollower(run)
    names = [type(e).__name__ for e in control.follow(run, poll=0.02, follower=follower)]
    assert names == ["StageChanged", "TrainingStopped", "Resumed", "TrainingStarted", "TrainingFinished"]
    assert follower.segment_ended
