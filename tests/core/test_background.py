"""Runs that survive: detached processes, signals, SIGKILL and resume, locks (real processes)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import RunError
from core.events import CheckpointSaved, Resumed, TrainingStarted, read_events
from core.predict import Predictor
from core.runs.checkpoints import last_complete_checkpoint
from core.runs.control import follow
from core.runs.lock import RunLock
from core.runs.progress import RunProgress
from core.runs.store import Run, run_info

CLI = [sys.executable, "-m", "core.cli"]
REPO = Path(__file__).resolve().parents[2]


def _train_args(tiny_config, root, *extra):
    return [
        "train", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--batch-size", "8",
        "--learning-rate", "5e-3", "--max-length", "64", "--output-dir", str(root), *extra,
    ]


def _wait(condition, timeout=120.0, what="condition"):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _only_run(root: Path) -> Path:
    _wait(lambda: len([p for p in root.iterdir() if not p.name.startswith(".")]) == 1, what="the run folder")
    return next(p for p in root.iterdir() if not p.name.startswith("."))


def _events_of(run: Path, kind):
    return [e for e in read_events(run / "events.jsonl") if isinstance(e, kind)]


def test_a_detached_run_survives_its_shells_hang_up_and_resumes_every_step_after_sigkill(tiny_config, tmp_path):
    root = tmp_path / "runs"
    args = " ".join(f"'{a}'" for a in CLI + _train_args(tiny_config, root, "--epochs", "8", "--detach"))
    # A shell that starts with SIGHUP ignored (the suite under nohup, as a CI runner may) cannot un-ignore it:
    # give it the default disposition, as a login shell has.
    shell = subprocess.run(["bash", "-c", f"{args} && kill -HUP $$"], cwd=REPO, capture_output=True, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    assert shell.returncode == -signal.SIGHUP  # the shell died of its hang-up
    run = _only_run(root)
    assert f"run folder: {run}" in shell.stdout and "sentitune attach" in shell.stdout
    _wait(lambda: len(_events_of(run, CheckpointSaved)) >= 2, what="two checkpoints")  # it trains on without it
    pid = json.loads((run / "status.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: run_info(run).status == "interrupted", what="status interrupted")

    # A checkpoint killed half-way through saving: newest, but without its trainer state.
    good = last_complete_checkpoint(run)
    partial = run / "checkpoints" / "checkpoint-99999"
    partial.mkdir()
    (partial / "config.json").write_text((good / "config.json").read_text())
    assert last_complete_checkpoint(run) == good

    done = subprocess.run(CLI + ["resume", str(run)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    total = _events_of(run, TrainingStarted)[0].total_steps
    assert Run(run).metrics["global_step"] == total and run_info(run).status == "finished"
    resumed = _events_of(run, Resumed)
    assert len(resumed) == 1 and resumed[0].step == int(good.name.split("-")[1])
    progress = RunProgress.from_events(read_events(run / "events.jsonl"))
    steps = [s for s, _ in progress.train_loss]
    assert steps == sorted(set(steps)) and steps[-1] == total  # one continuous curve
    assert progress.status == "finished" and progress.test.metrics["accuracy"] > 0.9


def test_the_first_ctrl_c_stops_and_saves(tiny_config, tmp_path):
    """(SIGTERM takes the same path: sentitune stop sends it to a detached run, tests/core/test_run_life.py.)"""
    sig = signal.SIGINT
    root = tmp_path / "runs"
    proc = subprocess.Popen(CLI + _train_args(tiny_config, root, "--epochs", "60", "--json"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if json.loads(line)["event"] == "StepLogged":
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["event"] == "TrainingStopped" and last["test"] is not None
    run = Path(last["run_dir"])
    assert run_info(run).status == "stopped"
    assert Predictor(run).predict("wonderful")[0].label in ("negative", "positive")


def test_a_second_writer_is_refused(trained_run, tmp_path):
    from core.training.train import resume

    run = trained_run[0].run_dir
    with RunLock(run):
        with pytest.raises(RunError, match="still running in another process"):
            resume(run)
    with pytest.raises(RunError, match="no complete checkpoint"):
        resume(run)  # a finished run keeps no checkpoints


def test_following_tolerates_a_truncated_last_line(trained_run, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    for name in ("config.json", "status.json"):
        (run / name).write_text((trained_run[0].run_dir / name).read_text())
    lines = (trained_run[0].run_dir / "events.jsonl").read_text().splitlines()
    (run / "events.jsonl").write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])
    events = list(follow(run, poll=0.01))
    assert len(events) == 5
    assert len(read_events(run / "events.jsonl")) == 5


def test_following_reads_the_final_event_written_just_before_the_lock_goes(trained_run, tmp_path):
    """A run writes status.json, then its final event, then lets go of its lock: a follower that sees the status
    first still gets the event, and ends once the lock is free."""
    import threading

    run = tmp_path / "copy"
    run.mkdir()
    for name in ("config.json", "status.json"):  # status: finished
        (run / name).write_text((trained_run[0].run_dir / name).read_text())
    lines = (trained_run[0].run_dir / "events.jsonl").read_text().splitlines()
    (run / "events.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    lock = RunLock(run).acquire()

    def final_event() -> None:
        time.sleep(0.3)
        with open(run / "events.jsonl", "a") as fh:
            fh.write(lines[-1] + "\n")
        lock.release()

    threading.Thread(target=final_event).start()
    events = list(follow(run, poll=0.01))
    assert type(events[-1]).__name__ == "TrainingFinished" and len(events) == len(lines)


def test_detached_bad_dataset_is_refused_before_detaching(tiny_config, tmp_path):
    root = tmp_path / "runs"
    done = subprocess.run(CLI + ["train", "--model", tiny_config.model, "--dataset", str(tmp_path / "gone.csv"),
                                 "--output-dir", str(root), "--detach"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "dataset file not found" in done.stderr
    assert not root.exists() or list(root.iterdir()) == []


def test_a_detached_child_that_fails_marks_its_folder_failed(tiny_config, tmp_path):
    """What the parent cannot check (the file went away after it looked) is recorded in the folder."""
    from core.runs.store import create_run_dir

    run = create_run_dir(tmp_path / "runs", tiny_config.model, "gone")
    subprocess.run(CLI + ["train", "--model", tiny_config.model, "--dataset", str(tmp_path / "gone.csv"),
                          "--run-dir", str(run)], cwd=REPO, capture_output=True)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "dataset file not found" in status["error"]


def _fake_run(root, name, status, events, **extra):
    from core.events import EventLog

    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {}, "created": time.time()}))
    (run / "status.json").write_text(json.dumps({"status": status, "error": extra.pop("error", None),
                                                 "updated": time.time(), **extra}))
    log = EventLog(run / "events.jsonl")
    for event in events:
        log.write(event)
    log.close()
    return run


def test_attach_exits_1_for_a_failed_run_and_follows_an_out_of_memory_retry(tmp_path, capsys):
    from core.cli import main
    from core.events import StageChanged, TrainingFailed, TrainingFinished

    retry = _fake_run(tmp_path, "retry", "finished", [
        StageChanged("retry", "retrying with batch_size 8"),
        TrainingFinished(run_dir="retry", test={"accuracy": 0.9}, train_runtime=1.0, train_samples_per_second=5.0)])
    first = _fake_run(tmp_path, "first", "failed", [
        TrainingFailed(run_dir="first", title="Out of GPU memory", message="out of memory")],
        error="out of memory", retry_run=str(retry))
    assert main(["attach", str(first)]) == 0
    out, err = capsys.readouterr()
    assert "failed: out of memory" in out and "finished: 5.0 train samples/s" in out
    assert "retried as retry; following it" in err and "run retry is finished" in out
    failed = _fake_run(tmp_path, "failed", "failed", [
        TrainingFailed(run_dir="failed", title="Training failed", message="loss became NaN")], error="loss became NaN")
    assert main(["attach", str(failed)]) == 1
    assert "loss became NaN" in capsys.readouterr().err


def test_detach_passes_auto_batch_on(tiny_config, tmp_path, monkeypatch):
    import core.training.background

    started = []

    class Recorder:
        pid = 424242

        def __init__(self, command, **kwargs):
            started.append(command)

    monkeypatch.setattr(core.training.background.subprocess, "Popen", Recorder)
    core.training.background.start_detached(tiny_config, tmp_path / "runs", auto_batch=True)
    assert "--auto-batch" in started[0] and "--run-dir" in started[0]
