"""One owner for a run folder's life across processes: claim it, stop it, follow it.

The run's lock (core.runs.lock) is the only truth about whether a run is alive: the kernel drops it when its
process dies, however it dies. `status.json` says what the owner last recorded, and who the owner is (`owner`,
an Owner), which decides how a stop reaches it. The app, the command line, detached processes and sweeps all
start, stop, follow and resume runs through this module; nothing else signals a run's process or reads its
liveness another way.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.errors import RunError
from core.events import TERMINAL_EVENTS, Event, parse_events
from core.format import STAGES_BEFORE_TRAINING, stop_note
from core.runs import layout
from core.runs.layout import STOP_FILE, RunStatus
from core.runs.lock import RunLock, is_locked

FOLLOW_POLL_SECONDS = 0.3


class Owner(StrEnum):
    """Who trains a run, recorded in its status.json: it decides how a stop reaches the run."""

    CLI = "cli"  # `sentitune train` / `resume` in a terminal: SIGTERM is Stop & save (and says so there)
    DETACHED = "detached"  # a background process (--detach, the app's "in background", several processes)
    APP = "app"  # a thread of a program that runs it in-process (the app, a notebook): the stop file only
    SWEEP = "sweep"  # a run of a sweep, in the sweep's process: the stop file only; the sweep ends after it


TAKES_SIGTERM = (Owner.CLI, Owner.DETACHED)
"""Owners whose process turns SIGTERM into Stop & save. The app's process does not: a signal would end the
app and every run in it, and leave the terminal in raw mode."""

LOCK_FD_VARIABLE = "SENTITUNE_RUN_LOCK_FD"
"""`FD` of the run lock a starter took and passed down to the process it started (a detached run)."""
LOCK_HELD_VARIABLE = "SENTITUNE_RUN_LOCK_HELD"
"""The run folder whose lock a supervisor holds for the training processes it launched."""


# ------------------------------------------------------------------ holding a run


def claim(run_dir: str | Path, resuming: bool = False) -> RunLock | None:
    """This process's hold on a run folder; RunError when another process holds it.

    The lock a starter passed down (start_detached) is adopted, so it is never free between a start and the
    process running; under a supervisor that holds it for its ranks, None. Otherwise it is taken now, and a
    resume clears the stop request an earlier process left behind: nobody held the run, so nobody was asked.
    """
    run_dir = Path(run_dir)
    inherited = _inherited_lock(run_dir)
    if inherited is not None:
        return inherited
    if os.environ.get(LOCK_HELD_VARIABLE) == str(run_dir.resolve()) and is_locked(run_dir):
        return None
    lock = RunLock(run_dir).acquire(_held(run_dir))
    if resuming:
        try:
            clear_stop_request(run_dir)
        except RunError:
            lock.release()
            raise
    return lock


def _inherited_lock(run_dir: Path) -> RunLock | None:
    """The lock passed down as a descriptor, when it is this run's (the variable is then removed, so the
    processes this one starts do not take it for theirs)."""
    value = os.environ.get(LOCK_FD_VARIABLE)
    if not value:
        return None
    path = run_dir / layout.LOCK
    try:
        fd = int(value)
        held, wanted = os.fstat(fd), os.stat(path)
    except (ValueError, OSError):
        return None
    if (held.st_dev, held.st_ino) != (wanted.st_dev, wanted.st_ino):
        return None
    del os.environ[LOCK_FD_VARIABLE]
    lock = RunLock.adopt(path, fd)
    lock.record_pid()
    return lock


def owner_here(default: str = Owner.CLI) -> str:
    """DETACHED in a process a starter handed its run to (start_detached, a supervisor), else `default`."""
    if os.environ.get(LOCK_FD_VARIABLE) or os.environ.get(LOCK_HELD_VARIABLE):
        return Owner.DETACHED
    return default


def check_not_held(run_dir: str | Path) -> None:
    """RunError, saying what to do, while another process holds the run (it trains, starts, or is being
    resumed); quiet in the process the run was handed down to."""
    run_dir = Path(run_dir)
    if is_locked(run_dir) and not _handed_down(run_dir):
        raise RunError(_held(run_dir))


def _handed_down(run_dir: Path) -> bool:
    """Whether a starter handed this process the run's lock (a descriptor, or a supervisor holding it)."""
    if os.environ.get(LOCK_HELD_VARIABLE) == str(run_dir.resolve()):
        return True
    try:
        held, wanted = os.fstat(int(os.environ.get(LOCK_FD_VARIABLE, ""))), os.stat(run_dir / layout.LOCK)
    except (ValueError, OSError):
        return False
    return (held.st_dev, held.st_ino) == (wanted.st_dev, wanted.st_ino)


def _held(run_dir: Path) -> str:
    return (f"run {run_dir.name} is still running in another process; follow it with sentitune attach "
            f"{run_dir.name}, or stop it first (sentitune stop {run_dir.name})")


def hand_down(lock: RunLock) -> dict[str, str]:
    """Environment for a process started to hold `lock` after this one lets go of it (pass_fds=(lock.fd,))."""
    return {LOCK_FD_VARIABLE: str(lock.fd)}


def clear_stop_request(run_dir: str | Path) -> None:
    """Remove a stop request left by an earlier process; RunError when the folder cannot be written."""
    try:
        (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)
    except OSError as exc:
        raise RunError(_unwritable(Path(run_dir), exc)) from None


def _unwritable(run_dir: Path, exc: OSError) -> str:
    return (f"cannot write in run {run_dir.name} ({exc.strerror or exc}); a run is resumed or stopped in a folder "
            "it can write: check the folder's permissions, or copy the run to a writable runs folder")


# ------------------------------------------------------------------ its state


@dataclass(frozen=True)
class RunState:
    """A run's state as the folder and its lock tell it."""

    status: str
    """What status.json says, corrected to `interrupted` when it says live and nobody holds the lock."""
    live: bool
    """Some process holds the run (training, starting, or being resumed)."""
    owner: str | None
    pid: int | None
    recorded: dict


def state(run_dir: str | Path) -> RunState:
    """The run's state now; RunError when its status.json is missing or damaged."""
    from core.runs.store import effective_status, read_run_file

    run_dir = Path(run_dir)
    recorded = read_run_file(run_dir / layout.STATUS)
    pid = recorded.get("pid")
    return RunState(effective_status(run_dir, recorded), is_locked(run_dir), recorded.get("owner"),
                    pid if isinstance(pid, int) and not isinstance(pid, bool) else None, recorded)


def current_stage(run_dir: str | Path) -> str | None:
    """The stage of the run's last segment, folded from all of events.jsonl (finished, stopped or failed once
    it ended; a later segment, after a resume, starts again)."""
    path = Path(run_dir) / layout.EVENTS
    wanted = ("StageChanged", *(cls.__name__ for cls in TERMINAL_EVENTS))
    stage = None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for event in parse_events(line for line in fh if any(name in line for name in wanted)):
                stage = getattr(event, "stage", None) or _ENDED_STAGE.get(type(event).__name__, stage)
    except OSError:
        return None
    return stage


_ENDED_STAGE = {"TrainingFinished": "finished", "TrainingStopped": "stopped", "TrainingFailed": "failed"}


# ------------------------------------------------------------------ stopping


def stop(run_dir: str | Path) -> str:
    """Ask a live run to stop and save what it has; returns what will happen, in one line. Never waits.

    The stop file reaches every owner at its next step (every rank of a several-process run, at a step they
    agree on). A process that takes SIGTERM as Stop & save is also signalled, so its terminal says so, but only
    once it is proven to be the run's (it holds the lock): a pid in status.json may belong to anyone by now.
    """
    run_dir = Path(run_dir)
    now = state(run_dir)
    if not now.live:
        raise RunError(f"run {run_dir.name} is not running (it is {now.status})")
    ask(run_dir)
    if now.owner in TAKES_SIGTERM and now.recorded.get("status") == RunStatus.RUNNING and now.pid \
            and holds_lock(now.pid, run_dir):
        try:
            os.kill(now.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass  # gone, or another user's: the stop file does the job
    stage = current_stage(run_dir) if now.recorded.get("status") == RunStatus.RUNNING else None
    note = f"asked run {run_dir.name} to stop: {stop_note(stage)}"
    if stage in (None, *STAGES_BEFORE_TRAINING) and (run_dir / layout.MODEL / "config.json").exists():
        note = f"asked run {run_dir.name} to stop: it stops before training resumes; the run keeps the model it has"
    if now.owner == Owner.SWEEP:
        note += "; it is a run of a sweep, which starts no further run (sentitune sweep --resume goes on with it)"
    return note


def ask(run_dir: str | Path) -> None:
    """Write the run's stop file (whatever holds the run sees it at its next step); RunError when it cannot."""
    run_dir = Path(run_dir)
    try:
        (run_dir / STOP_FILE).touch()
    except OSError as exc:
        raise RunError(f"cannot ask run {run_dir.name} to stop: {exc.strerror or exc} writing in {run_dir}; "
                       "check the folder's permissions") from None


def holds_lock(pid: int, run_dir: str | Path) -> bool:
    """Whether process `pid` has the run's lock file open while it is locked: the lock's holder (our processes
    open it only to hold it, or for a moment to test it). False when it cannot be told (another user's process,
    no /proc)."""
    path = Path(run_dir) / layout.LOCK
    try:
        wanted = os.stat(path)
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            held = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (held.st_dev, held.st_ino) == (wanted.st_dev, wanted.st_ino):
            return is_locked(run_dir)
    return False


# ------------------------------------------------------------------ following


class EventFollower:
    """Reads a run's events.jsonl as it grows, keeping its place between calls (and across a Ctrl+C)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / layout.EVENTS
        self.offset = 0
        self._partial = b""
        self.queue: deque[Event] = deque()
        self.segment_ended = False
        """Whether the last event read ended a segment (finished, stopped, failed); an event after it (a
        resume) starts the next segment."""

    def read(self) -> list[Event]:
        """Queue the complete lines written since the last read (a half-written last line waits); returns them."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        events = parse_events([line.decode("utf-8", "replace") for line in lines])
        if events:
            self.segment_ended = isinstance(events[-1], TERMINAL_EVENTS)
        self.queue.extend(events)
        return events


def follow(run_dir: str | Path, stop: Callable[[], bool] = lambda: False, poll: float = FOLLOW_POLL_SECONDS,
           follower: EventFollower | None = None) -> Iterator[Event]:
    """Every event of a run, then new ones as they are written, until nobody holds the run or `stop()`.

    A run stopped or failed earlier and resumed keeps its earlier final event before `Resumed`: that ends a
    segment, not the following; what ends it is the lock being free (checked before the last read, so every
    event the owner wrote before letting go is read). Pass a `follower` to continue where an interrupted
    iteration left off; its `segment_ended` then says whether the run's last segment ended with a final event.
    """
    follower = follower or EventFollower(run_dir)
    while True:
        alive = is_locked(Path(run_dir))
        follower.read()
        while follower.queue:
            yield follower.queue.popleft()
        if not alive or stop():
            return
        time.sleep(poll)
