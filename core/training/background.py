"""Runs in their own process: start detached, follow from events.jsonl, ask to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

from core.config import TrainConfig, save_toml
from core.errors import RunError
from core.events import TERMINAL_EVENTS, Event, StageChanged, parse_events
from core.files import write_json_atomic
from core.format import stop_note
from core.runs import layout
from core.runs.layout import STOP_FILE, RunStatus
from core.runs.store import Run, create_run_dir, effective_status, process_alive, read_run_file, write_status

FOLLOW_POLL_SECONDS = 0.3


def start_detached(config: TrainConfig | None, runs_root: str | Path, resume_run: Path | None = None,
                   auto_batch: bool = False, run_dir: str | Path | None = None) -> Path:
    """Start training in a new process and session (it survives SIGHUP and the terminal closing).

    What can be checked here is checked first (the model, max_length, the runs folder, a local data
    file), so bad input is an error now rather than a failed run later. Returns the run folder at once;
    the child writes events.jsonl, status.json and train.log there, and its stdout/stderr go to `process.log`.
    """
    from core.training.distributed import launch_command, needs_launcher
    from core.training.preflight import check_data, preflight

    if resume_run is not None:
        run_dir = Path(resume_run)
        args = ["resume", str(run_dir)]
        config = Run(run_dir).train_config()
        (run_dir / STOP_FILE).unlink(missing_ok=True)  # the request that stopped the earlier process is spent
    else:
        preflight(config, runs_root if run_dir is None else Path(run_dir).parent)
        check_data(config)
        run_dir = create_run_dir(runs_root, config.model, config.dataset) if run_dir is None else _empty_folder(run_dir)
        job = save_toml(config, run_dir / layout.JOB)
        # Listed at once (the process rewrites it in full once its data and model are loaded).
        write_json_atomic(run_dir / layout.CONFIG, {"config": config.to_dict(), "created": time.time()})
        args = ["train", "--config", str(job), "--run-dir", str(run_dir)] + (["--auto-batch"] if auto_batch else [])
    command = [sys.executable, "-m", "core.cli", *args]
    if needs_launcher(config):
        # N processes through accelerate, watched by a supervisor that records a failing rank's message.
        command = [sys.executable, "-m", "core.training.supervisor", str(run_dir), "--", *launch_command(config, args)]
    write_status(run_dir, RunStatus.STARTING)
    with open(run_dir / layout.PROCESS_LOG, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # own session: no SIGHUP when the SSH session ends
            cwd=os.getcwd(), env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    write_status(run_dir, RunStatus.STARTING, None, child_pid=process.pid)
    (run_dir / layout.LAUNCHER_PID).write_text(str(process.pid))  # leads its own process group
    return run_dir


def _empty_folder(path: str | Path) -> Path:
    """`path` as a new run folder: made if missing, refused when it already holds a run."""
    path = Path(path).expanduser()
    if (path / layout.CONFIG).exists() or (path / layout.STATUS).exists():
        raise RunError(f"{path} already holds a run; give a new folder (or resume that run)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def current_stage(run_dir: str | Path) -> str | None:
    """The stage of a run's latest StageChanged event (read from the end of events.jsonl)."""
    path = Path(run_dir) / layout.EVENTS
    try:
        with open(path, "rb") as fh:
            fh.seek(max(fh.seek(0, os.SEEK_END) - 65536, 0))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for event in reversed(parse_events(lines)):
        if isinstance(event, StageChanged):
            return event.stage
    return None


def request_stop(run_dir: str | Path, wait: float = 5.0) -> str:
    """Ask a run in another process to stop and save what it has; returns what will happen, in one line.

    A detached run still starting may be killed by the signal before it can handle it: then its status
    is recorded as stopped here, so it never stays `starting`.
    """
    from core.runs.lock import is_locked

    run_dir = Run(run_dir).path
    status = read_run_file(run_dir / layout.STATUS)
    state = effective_status(run_dir, status)
    if state not in (RunStatus.RUNNING, RunStatus.STARTING):
        raise RunError(f"run {run_dir.name} is not running (it is {state})")
    (run_dir / STOP_FILE).touch()
    pid = status.get("pid") if state == RunStatus.RUNNING else status.get("child_pid")
    if pid:
        try:
            os.kill(int(pid), signal.SIGTERM)  # the training process treats SIGTERM as Stop & save
        except (ProcessLookupError, PermissionError):
            pass  # another machine or already gone: the stop file does the job
    if state == RunStatus.STARTING:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not is_locked(run_dir) and process_alive(pid):
            time.sleep(0.05)
        if not is_locked(run_dir) and not process_alive(pid):
            current = read_run_file(run_dir / layout.STATUS)
            if current.get("status") == RunStatus.STARTING:
                write_status(run_dir, RunStatus.STOPPED, "stopped before it started; nothing was saved")
                return f"run {run_dir.name} stopped before it started; nothing was saved"
    return f"asked run {run_dir.name} to stop: {stop_note(current_stage(run_dir))}"


class EventFollower:
    """Reads a run's events.jsonl as it grows, keeping its place between calls (and across a Ctrl+C)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / layout.EVENTS
        self.offset = 0
        self._partial = b""
        self.queue: deque[Event] = deque()

    def read(self) -> None:
        """Queue the complete lines written since the last read (a half-written last line waits)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        self.queue.extend(parse_events([line.decode("utf-8", "replace") for line in lines]))

    def run_ended(self) -> bool:
        """True once the run's process is no longer running and every written event has been read."""
        try:
            state = effective_status(self.run_dir, read_run_file(self.run_dir / layout.STATUS))
        except RunError:
            state = RunStatus.UNKNOWN
        if state in (RunStatus.RUNNING, RunStatus.STARTING):
            return False
        return not self.path.exists() or self.path.stat().st_size == self.offset


FINAL_EVENT_GRACE_POLLS = 20  # 2 s at 0.1 s


def follow_events(run_dir: str | Path, stop: Callable[[], bool] = lambda: False,
                  poll: float = FOLLOW_POLL_SECONDS, follower: EventFollower | None = None) -> Iterator[Event]:
    """Every event of a run, then new ones as they are written, until the run ends or `stop()`.

    A run whose process died without a final event ends the iteration once its status says so. Pass a
    `follower` to continue where an interrupted iteration left off.
    """
    follower = follower or EventFollower(run_dir)
    while True:
        if (yield from _read_new(follower)) or stop():
            return
        if follower.run_ended():
            # The status is written just before the final event: give that event a moment to land. A run
            # killed without one (interrupted) ends after this grace.
            for _ in range(FINAL_EVENT_GRACE_POLLS):
                time.sleep(0.1)
                if (yield from _read_new(follower)):
                    return
            return
        time.sleep(poll)


def _read_new(follower: EventFollower) -> Generator[Event, None, bool]:
    """Yield the events written since the last read; returns True once the run's final event was among them."""
    follower.read()
    while follower.queue:
        event = follower.queue.popleft()
        yield event
        if isinstance(event, TERMINAL_EVENTS):
            return True
    return False
