"""Several processes through `accelerate launch` (on this CPU machine: 2 processes over gloo)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.config import TrainConfig
from core.events import EvalCompleted, StepLogged, TrainingFinished, TrainingStarted, TrainingStopped, read_events
from core.predict import Predictor
from core.runs.store import Run, run_info
from core.training.distributed import launch_command, needs_launcher
from core.training.planning import plan
from core.training.supervisor import failure_message

CLI = [sys.executable, "-m", "core.cli"]
REPO = Path(__file__).resolve().parents[2]


def _args(tiny_config, root, *extra):
    return ["train", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--batch-size", "8",
            "--learning-rate", "5e-3", "--max-length", "64", "--output-dir", str(root), "--num-processes", "2", *extra]


def _wait(condition, timeout=180.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


SLOW_RANK = """
import os, sys, time, types
if os.environ.get("RANK") == "1":  # the other rank of the run: slower, and its clock runs four times as fast
    sys.path.insert(0, {repo!r})
    import core.training.callback as callback
    real_step_end, real_clock = callback.EventCallback.on_step_end, time.perf_counter

    def slow_step_end(self, *args, **kwargs):
        time.sleep(0.05)
        return real_step_end(self, *args, **kwargs)

    callback.EventCallback.on_step_end = slow_step_end
    callback.time = types.SimpleNamespace(perf_counter=lambda: 4 * real_clock())
"""


def _slow_second_rank(tmp_path) -> dict:
    """Environment under which rank 1 runs slower than rank 0 and reads its own clock differently (a stand-in for
    a slower GPU): any decision leading to a collective taken from a rank's own clock then differs between them."""
    folder = tmp_path / "slow-rank"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SLOW_RANK.format(repo=str(REPO)))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def _kill_all(proc, root: Path) -> None:
    """The command and every process of its run (the launcher leads their own process group)."""
    for pid_file in root.glob("*/launcher.pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    proc.kill()


def test_ctrl_c_in_the_foreground_stops_both_processes_once(tiny_config, tmp_path):
    """The first Ctrl+C reaches every rank; the events are printed once each (none replayed). Rank 1 runs slower
    and its clock faster: the ranks must still agree at every step on logging and stopping (they deadlocked when
    each logged by its own clock: one rank in the loss's all-gather, the other already in the next step)."""
    root = tmp_path / "runs"
    proc = subprocess.Popen(CLI + _args(tiny_config, root, "--epochs", "300", "--json", "--batch-size", "4"),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_slow_second_rank(tmp_path))
    watchdog = threading.Timer(150, _kill_all, (proc, root))  # a deadlock fails the test, never hangs the suite
    watchdog.start()
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if json.loads(line)["event"] == "StepLogged" and json.loads(line)["step"] >= 12:
            break  # past the first synchronised steps, with logs between them
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()  # not communicate(): it would skip what the line iterator has buffered
    err = proc.stderr.read()
    watchdog.cancel()
    assert proc.wait(timeout=180) == 0, err
    printed = [json.loads(line) for line in lines + out.splitlines()]
    run = next(p for p in root.iterdir() if not p.name.startswith("."))
    assert run_info(run).status == "stopped"
    written = [type(e).__name__ for e in read_events(run / "events.jsonl")]
    assert [e["event"] for e in printed] == written, err  # each event once
    assert [e["event"] for e in printed].count("TrainingStarted") == 1
    launcher = int((run / "launcher.pid").read_text())
    _wait(lambda: not Path(f"/proc/{launcher}").exists() or b"zombie" in Path(f"/proc/{launcher}/status").read_bytes().lower())
    leftover = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True).stdout.split()
    assert leftover == []  # every rank has exited
    stopped = [e for e in read_events(run / "events.jsonl") if isinstance(e, TrainingStopped)]
    assert len(stopped) == 1 and stopped[0].test is not None
    assert Predictor(run).predict("dull awful")[0].label in ("negative", "positive")


def test_a_failing_rank_is_named(tmp_path):
    assert "exited with code 3" in failure_message(tmp_path, 3)
    (tmp_path / "failure.rank1.json").write_text(json.dumps({"rank": 1, "message": "CUDA error: device-side assert"}))
    assert failure_message(tmp_path, 1) == "rank 1 failed: CUDA error: device-side assert"


def test_launch_command_and_effective_batch(tmp_path):
    config = TrainConfig(num_processes=4, batch_size=8, gradient_accumulation=2, max_samples=1000)
    cmd = launch_command(config, ["train", "--config", "job.toml"])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "4" and cmd[-5:] == ["-m", "core.cli", "train", "--config", "job.toml"]
    port = int(cmd[cmd.index("--main_process_port") + 1])  # its own free port, not the shared default 29500
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free: nothing listens there
    assert needs_launcher(config) and not needs_launcher(TrainConfig())
    yaml = tmp_path / "two-nodes.yaml"
    yaml.write_text("num_machines: 2\n")
    cmd = launch_command(config.replace(accelerate_config=str(yaml)), ["train"])
    assert cmd[cmd.index("--config_file") + 1] == str(yaml)
    assert plan(config).effective_batch == 64 and plan(config).steps_per_epoch == 11  # 700 / 64


def _node_config(folder: Path, rank: int, port: int) -> Path:
    path = folder / f"node{rank}.yaml"
    path.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_machines: 2\nnum_processes: 2\n"
        f"machine_rank: {rank}\nmain_process_ip: 127.0.0.1\nmain_process_port: {port}\nmixed_precision: 'no'\n"
    )
    return path


def test_two_machines_train_one_run_in_a_shared_folder(tiny_config, tmp_path, trained_run):
    """The README's two-machine recipe, both "machines" on this one: one process each, one shared --run-dir.

    The two processes must write one coherent run: rank 0 alone writes its files, both train one model
    (checked at every evaluation, also after the baseline is scored first), and losses are means over both
    ranks' reviews, as with one process.
    """
    import socket

    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = tmp_path / "shared" / "run"
    common = ["train", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--batch-size", "8",
              "--learning-rate", "5e-3", "--max-length", "64", "--epochs", "3", "--num-processes", "2",
              "--run-dir", str(run)]
    second = subprocess.Popen(CLI + common + ["--accelerate-config", str(_node_config(tmp_path, 1, port))],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = subprocess.run(CLI + common + ["--accelerate-config", str(_node_config(tmp_path, 0, port))],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    out, err = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + err
    assert "machine 1: starting its processes" in out
    assert run_info(run).status == "finished" and Run(run).config_record["processes"] == 2
    events = read_events(run / "events.jsonl")
    steps = [e.step for e in events if isinstance(e, StepLogged)]
    assert len(steps) == len(set(steps))  # rank 1 wrote no events
    started = [e for e in events if isinstance(e, TrainingStarted)]
    assert len(started) == 1 and started[0].effective_batch == 16  # 8 per process x 2 processes
    assert sum(isinstance(e, TrainingFinished) for e in events) == 1
    assert Run(run).metrics["global_step"] == started[0].total_steps == 3 * 14  # ceil(210 rows / 16 per step)
    assert Predictor(run).predict("wonderful excellent superb")[0].label in ("negative", "positive")
    assert not list(run.glob("failure.rank*.json"))
    baseline = next(e for e in events if isinstance(e, EvalCompleted) and e.split == "baseline")
    one_process = next(e for e in trained_run[1] if isinstance(e, EvalCompleted) and e.split == "baseline")
    assert abs(baseline.metrics["loss"] - one_process.metrics["loss"]) < 1e-3
    for log in ("train.log", "train.rank1.log"):
        text = (run / log).read_text()
        assert text.count("every rank holds the same weights") == 3 and "weights differ" not in text, log


def test_several_machines_need_one_shared_run_folder(tiny_config, tmp_path):
    out = subprocess.run(CLI + ["train", "--model", tiny_config.model, "--dataset", tiny_config.dataset,
                                "--num-processes", "2", "--accelerate-config", str(_node_config(tmp_path, 0, 29999))],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and "give each the same --run-dir, on a file system they share" in out.stderr
