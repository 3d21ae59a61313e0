"""A lock file in the run folder: one writer per run, and a way to tell a live run from a dead one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from core.errors import RunError
from core.runs import layout

LOCK_NAME = layout.LOCK


class RunLock:
    """An exclusive advisory lock on `run_dir/.lock`, held for as long as a process writes the run.

    The kernel drops it when the process dies, however it dies, so a free lock on a run that says
    `running` means its process is gone.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunError(
                f"run {self.path.parent.name} is being written by another sentitune process; "
                "attach to it or stop it first (sentitune stop RUN)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(run_dir: str | Path) -> bool:
    """True while some process holds the run's lock (that is, the run's process is alive)."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
