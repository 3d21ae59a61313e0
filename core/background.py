"""Runs in their own process: start detached, follow from events.jsonl, ask to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from core.config import TrainConfig, save_toml
from core.errors import RunError
from core.events import TERMINAL_EVENTS, Event, parse_events
from core.runs import STARTING, Run, create_run_dir, effective_status, read_run_file, write_json_atomic, write_status

FOLLOW_POLL_SECONDS = 0.3


def start_detached(config: TrainConfig | None, runs_root: str | Path, resume_run: Path | None = None) -> Path:
    """Start training in a new process and session (it survives SIGHUP and the terminal closing).

    Returns the run folder at once; the child writes events.jsonl, status.json and train.log there,
    and its stdout/stderr go to `process.log`.
    """
    from core.distributed import launch_command, needs_launcher

    if resume_run is not None:
        run_dir = Path(resume_run)
        args = ["resume", str(run_dir)]
        config = Run(run_dir).train_config()
    else:
        run_dir = create_run_dir(runs_root, config.model, config.dataset)
        job = save_toml(config, run_dir / "job.toml")
        # Listed at once (the process rewrites it in full once its data and model are loaded).
        write_json_atomic(run_dir / "config.json", {"config": config.to_dict(), "created": time.time()})
        args = ["train", "--config", str(job), "--run-dir", str(run_dir)]
    command = [sys.executable, "-m", "core.cli", *args]
    if needs_launcher(config):
        # N processes through accelerate, watched by a supervisor that records a failing rank's message.
        command = [sys.executable, "-m", "core.launch", str(run_dir), "--", *launch_command(config, args)]
    write_status(run_dir, STARTING)
    with open(run_dir / "process.log", "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # own session: no SIGHUP when the SSH session ends
            cwd=os.getcwd(), env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    write_status(run_dir, STARTING, None, child_pid=process.pid)
    (run_dir / "launcher.pid").write_text(str(process.pid))  # leads its own process group
    return run_dir


def request_stop(run_dir: str | Path) -> str:
    """Ask a run in another process to stop at its next step and save; returns what was done."""
    from core.job import STOP_FILE

    run_dir = Path(run_dir)
    status = read_run_file(run_dir / "status.json")
    state = effective_status(run_dir, status)
    if state not in ("running", STARTING):
        raise RunError(f"run {run_dir.name} is not running (it is {state})")
    (run_dir / STOP_FILE).touch()
    pid = status.get("pid") if state == "running" else status.get("child_pid")
    if pid:
        try:
            os.kill(int(pid), signal.SIGTERM)  # the training process treats SIGTERM as Stop & save
        except (ProcessLookupError, PermissionError):
            pass  # another machine or already gone: the stop file does the job
    return f"asked run {run_dir.name} to stop at its next step and save"


def follow_events(run_dir: str | Path, stop: Callable[[], bool] = lambda: False,
                  poll: float = FOLLOW_POLL_SECONDS) -> Iterator[Event]:
    """Every event of a run, then new ones as they are written, until the run ends or `stop()`.

    A partly written last line waits for its end; a run whose process died without a final event
    ends the iteration once its status says so.
    """
    path = Path(run_dir) / "events.jsonl"
    offset, pending = 0, b""
    while True:
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            offset += len(chunk)
            data = pending + chunk
            lines = data.split(b"\n")
            pending = lines.pop()  # no newline yet: maybe half written
            for event in parse_events([line.decode("utf-8", "replace") for line in lines]):
                yield event
                if isinstance(event, TERMINAL_EVENTS):
                    return
        if stop():
            return
        try:
            state = effective_status(Path(run_dir), read_run_file(Path(run_dir) / "status.json"))
        except RunError:
            state = "unknown"
        if state not in ("running", STARTING) and path.exists() and path.stat().st_size == offset:
            return
        time.sleep(poll)
