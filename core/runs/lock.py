"""A lock file in the run folder: one writer per run, and a way to tell a live run from a dead one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from core.errors import RunError
from core.runs import layout

LOCK_NAME = layout.LOCK


class RunLock:
    """An exclusive advisory lock on `run_dir/.lock` (or on the file `path`), held for as long as a process
    writes the run (or sweep).

    The kernel drops it when the process dies, however it dies, so a free lock on a run that says
    `running` means its process is gone. A child process started with the descriptor inherits the lock
    (`adopt`): it is never free between a parent starting a background process and that process running.
    """

    def __init__(self, run_dir: str | Path | None = None, path: str | Path | None = None):
        self.path = Path(path) if path is not None else Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, busy: str | None = None) -> RunLock:
        """Take the lock; RunError (`busy`, or a message naming the run) when another process holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(f"cannot write {self.path}: {exc.strerror or exc}; check the folder's permissions "
                           "and free space") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunError(busy or (
                f"run {self.path.parent.name} is being written by another sentitune process; "
                "attach to it or stop it first (sentitune stop RUN)")) from None
        self._fd = fd
        self.record_pid()
        return self

    def record_pid(self) -> None:
        """Write this process's pid into the lock file (for people reading it; the lock itself is the truth)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass

    @property
    def fd(self) -> int | None:
        return self._fd

    @classmethod
    def adopt(cls, path: str | Path, fd: int) -> RunLock:
        """The lock a parent process took and passed down as descriptor `fd`."""
        lock = cls(path=path)
        lock._fd = fd
        return lock

    def hand_over(self) -> None:
        """Close this process's descriptor without unlocking: a child that inherited it keeps the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(run_dir: str | Path | None = None, path: str | Path | None = None) -> bool:
    """True while some process holds the run's lock, or the lock file `path` (that is, its process is alive)."""
    path = Path(path) if path is not None else Path(run_dir) / LOCK_NAME
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
