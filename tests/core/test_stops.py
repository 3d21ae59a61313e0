"""A stop takes effect within a step or a batch in every stage, and the run ends `stopped` with what it has."""

import json
import signal
import subprocess
import threading
import time

import pytest

from core.events import EvalCompleted, StageChanged, TrainingStarted, TrainingStopped
from core.runs.store import run_info
from core.training.train import train
from tests.core.test_background import CLI, REPO, _train_args, _wait


def _stop_at(stage: str, events: list, stop: threading.Event, detail: str = ""):
    """A listener that records events and asks for a stop when the run reaches `stage`."""
    def listen(event):
        events.append(event)
        if isinstance(event, StageChanged) and event.stage == stage and detail in event.detail:
            stop.set()
    return listen


def test_a_stop_while_loading_data_makes_no_run_folder(tiny_config, tmp_path):
    events, stop = [], threading.Event()
    result = train(tiny_config, tmp_path / "runs", on_event=_stop_at("data", events, stop), stop_event=stop)
    assert result.status == "stopped" and result.run_dir is None
    assert isinstance(events[-1], TrainingStopped) and events[-1].saved is False
    assert not any(isinstance(e, TrainingStarted) for e in events)
    assert not (tmp_path / "runs").exists() or not [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]


@pytest.mark.parametrize("stage", ["tokenize", "baseline"])
def test_a_stop_before_training_ends_stopped_at_once(tiny_config, tmp_path, stage):
    events, stop = [], threading.Event()
    config = tiny_config.replace(eval_batch_size=1, max_length=32)  # many small steps: the stop lands mid-pass
    result = train(config, tmp_path / "runs", on_event=_stop_at(stage, events, stop), stop_event=stop)
    assert result.status == "stopped" and result.test is None
    status = json.loads((result.run_dir / "status.json").read_text())
    assert status["status"] == "stopped" and "before training began" in status["error"]
    assert not (result.run_dir / "model").exists()
    assert not any(isinstance(e, (TrainingStarted, EvalCompleted)) for e in events)  # the pass was cut short
    assert events[-1].saved is False


def test_a_stop_while_testing_saves_the_model_untested(tiny_config, tmp_path):
    events, stop = [], threading.Event()
    config = tiny_config.replace(eval_batch_size=1, epochs=1)
    result = train(config, tmp_path / "runs", on_event=_stop_at("test", events, stop, "scoring"), stop_event=stop)
    assert result.status == "stopped" and result.test is None
    assert (result.run_dir / "model" / "config.json").exists()
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["test"] is None and metrics["validation"]
    assert "test scoring was stopped" in json.loads((result.run_dir / "status.json").read_text())["error"]
    assert events[-1].saved is True and "not tested" in __import__("core.format").format.format_event(events[-1])


def test_after_a_stop_ends_training_the_test_still_runs(tiny_config, tmp_path):
    """The request that ended training is spent: the saved model is tested in full."""
    events, stop = [], threading.Event()
    result = train(tiny_config.replace(epochs=50), tmp_path / "runs", on_event=_stop_at("train", events, stop),
                   stop_event=stop)
    assert result.status == "stopped" and result.test is not None and result.test["n"] > 0


def test_ctrl_c_while_scoring_the_baseline_stops_within_seconds(tiny_config, tmp_path):
    root = tmp_path / "runs"
    args = _train_args(tiny_config, root, "--json", "--config", str(_slow_baseline(tmp_path)))
    proc = subprocess.Popen(CLI + args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "StageChanged" and event["stage"] == "baseline":
            break
    asked = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert time.monotonic() - asked < 15
    assert "stops before training begins; no model will be saved" in err
    run = next(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "stopped" and "before training began" in status["error"]


def _slow_baseline(tmp_path):
    """A config whose baseline pass scores every test review one at a time."""
    path = tmp_path / "slow.toml"
    path.write_text("baseline_samples = 0\neval_batch_size = 1\nmax_samples = 0\n")
    return path


def test_a_stop_right_after_a_detached_start_never_stays_starting(tiny_config, tmp_path):
    from core.runs.control import stop
    from core.training.background import start_detached

    run = start_detached(tiny_config, tmp_path / "runs")
    time.sleep(0.5)  # its process is importing (a stop before it started at all: tests/tui/test_background_runs.py)
    message = stop(run)
    assert "stop" in message
    _wait(lambda: run_info(run).status == "stopped", timeout=60, what="the run to end stopped")


def test_a_detached_child_killed_at_birth_shows_as_interrupted(tiny_config, tmp_path):
    import os

    from core.training.background import start_detached

    run = start_detached(tiny_config, tmp_path / "runs")
    os.kill(json.loads((run / "status.json").read_text())["child_pid"], signal.SIGKILL)
    _wait(lambda: run_info(run).status == "interrupted", timeout=10, what="the dead start to show")


def test_a_second_ctrl_c_aborts_and_the_folder_says_so(tiny_config, tmp_path):
    root = tmp_path / "runs"
    proc = subprocess.Popen(CLI + _train_args(tiny_config, root, "--epochs", "200", "--json"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if json.loads(line)["event"] == "StepLogged":
            break
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)  # signals sent together would merge into one
    proc.send_signal(signal.SIGINT)
    proc.stdout.read()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, err
    run = next(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "aborted by a second Ctrl+C" in status["error"]
