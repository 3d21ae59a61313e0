"""Checkpoints written off the training loop: the state is copied off the GPU, then a thread writes it.

A DistilBERT checkpoint with its optimizer state is about 800 MB; written in the loop, every epoch waits for the
disk. Here the loop waits only for the copy into host memory: the files are written by one background thread into
a hidden staging folder, renamed to `checkpoint-<step>` once complete, and only then are older checkpoints rotated
away. A process killed mid-write leaves the previous checkpoint whole (resume loses at most one epoch, as before);
the next save, the end of training and any failure wait for the write in flight, and its error surfaces there.
"""

from __future__ import annotations

import copy
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

STAGING_PREFIX = ".writing-"  # never matched by `checkpoint-*`: resume and rotation skip a half-written folder


def to_host(value: Any) -> Any:
    """A copy of `value` (nested dicts, lists and tuples of tensors) whose tensors live in host memory, detached from
    anything training goes on changing in place."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: to_host(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_host(v) for v in value)
    return copy.deepcopy(value)


def remove_staging(folder: str | Path) -> None:
    """Remove the staging folders a killed process left in a checkpoints folder."""
    folder = Path(folder)
    if folder.is_dir():
        for staging in folder.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(staging, ignore_errors=True)


class CheckpointWriter:
    """One checkpoint write in flight at a time, on a background thread."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._written: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def submit(self, final: str | Path, step: int, write: Callable[[Path], None],
               after: Callable[[], None] = lambda: None) -> None:
        """Write a checkpoint with `write(staging_folder)`, rename it to `final`, then run `after` (rotation).

        Waits for the write before it first (raising its error, if it failed).
        """
        self.wait()
        final = Path(final)
        staging = final.parent / f"{STAGING_PREFIX}{final.name}"

        def run() -> None:
            try:
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                write(staging)
                if final.exists():  # a stop saved at the step an evaluation had just saved
                    shutil.rmtree(final)
                os.replace(staging, final)
                with self._lock:
                    self._written.append((step, str(final)))
                after()
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread at its next wait
                shutil.rmtree(staging, ignore_errors=True)
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"checkpoint-{step}", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until the write in flight is on disk; raise its error if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def written(self) -> list[tuple[int, str]]:
        """The (step, folder) of checkpoints completed since the last call."""
        with self._lock:
            done, self._written = self._written, []
        return done
