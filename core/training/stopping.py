"""Stop requests: from this process (an Event set by Ctrl+C, SIGTERM or the app) and from others (a file)."""

from __future__ import annotations

import threading
from pathlib import Path


class StoppedEarly(Exception):
    """A stop request ended a stage that has no natural stopping point (loading, tokenizing, scoring)."""


class StopSignal:
    """Whether a run has been asked to stop: its Event, or its run folder's stop file once it has one."""

    def __init__(self, event: threading.Event | None = None, stop_file: Path | None = None):
        self.event = event or threading.Event()
        self.stop_file = stop_file

    def requested(self) -> bool:
        if not self.event.is_set() and self.stop_file is not None and self.stop_file.exists():
            self.event.set()
        return self.event.is_set()

    def check(self) -> None:
        """Raise StoppedEarly when a stop was asked for."""
        if self.requested():
            raise StoppedEarly

    def consume(self) -> None:
        """Mark the request as handled (training stopped), so a later one can cut testing short."""
        self.event.clear()
        if self.stop_file is not None:
            self.stop_file.unlink(missing_ok=True)
