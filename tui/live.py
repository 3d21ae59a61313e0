"""What the dashboard shows live, and how a stop reaches it: the app holds one of these per run (or sweep) it
shows, whether its own worker trains it or another process does."""

from __future__ import annotations

import threading
from enum import StrEnum
from pathlib import Path


class Kind(StrEnum):
    HERE = "here"  # trained by the app's training worker, in this process
    PROCESS = "process"  # another process's run folder, followed (attached, or started in background)
    SWEEP_HERE = "sweep"  # a sweep trained by the app's worker
    SWEEP_PROCESS = "sweep-process"  # a sweep in its own process, followed run by run


class LiveView:
    """The run or sweep on the dashboard: where it is, whether a stop was asked, and how it ended.

    A stop asked before the folder (or sweep record) of a background start exists is kept, and delivered by
    the worker the moment it learns where the run is (`found`): a stop never stops only the following.
    """

    def __init__(self, kind: Kind, run_dir: Path | None = None, sweep: Path | None = None) -> None:
        self.kind = kind
        self.run_dir = run_dir
        """The run shown (for a sweep: its current run), once known."""
        self.sweep = sweep
        """The sweep record, once known."""
        self.stop_event = threading.Event()
        """Set to stop a run or sweep trained in this process (core's StopSignal watches it)."""
        self.unfollow = threading.Event()
        """Set to end the following of another process's run (quitting the app); that run goes on."""
        self.stop_asked = False
        self.stop_stage: str | None = None
        """The stage the stop was asked in (a stop during training still tests and saves)."""
        self._delivered = False
        self._mutex = threading.Lock()

    @property
    def in_process(self) -> bool:
        return self.kind in (Kind.HERE, Kind.SWEEP_HERE)

    @property
    def is_sweep(self) -> bool:
        return self.kind in (Kind.SWEEP_HERE, Kind.SWEEP_PROCESS)

    def ask_stop(self, stage: str | None) -> bool:
        """Record a stop request (UI thread; never blocks). True when it still has to be delivered to another
        process (`deliver`, in a worker)."""
        self.stop_asked, self.stop_stage = True, stage
        if self.in_process:
            self.stop_event.set()
            return False
        return True

    def found(self, run_dir: Path | None = None, sweep: Path | None = None) -> str | None:
        """The worker learned where the run (or sweep) is: a stop asked meanwhile is delivered now."""
        with self._mutex:
            if run_dir is not None:
                self.run_dir = run_dir
            if sweep is not None:
                self.sweep = sweep
        return self.deliver()

    def deliver(self) -> str | None:
        """Send an asked stop to the process that trains the run or sweep, once; its one-line answer, or None
        while there is nothing (yet) to send it to. CoreError when it cannot be asked (it ended meanwhile)."""
        with self._mutex:
            if not self.stop_asked or self._delivered or self.in_process:
                return None
            target = self.sweep if self.kind == Kind.SWEEP_PROCESS else self.run_dir
            if target is None:
                return None
            self._delivered = True
        if self.kind == Kind.SWEEP_PROCESS:
            from core.experiments.record import request_sweep_stop

            return request_sweep_stop(target)
        from core.runs.control import stop

        return stop(target)
