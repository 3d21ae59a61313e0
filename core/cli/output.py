"""What the command line prints: user text made safe, one line per event, progress, stop notes."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import threading

from core.errors import ConfigError, CoreError
from core.format import format_event, format_kept, printable, stop_note
from core.training.phases import phase_line


def say(text: str = "", file=None) -> None:
    """Print a line that may hold user text (file names, labels, reviews) with control characters made visible."""
    print(printable(text), file=file or sys.stdout, flush=True)


def json_line(data, default=None) -> str:
    """`data` as one line of strict JSON: a NaN or infinite number (a model whose outputs blew up) is null, never
    the `NaN` that JSON readers refuse."""
    return json.dumps(_finite(data), default=default, allow_nan=False)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def error_line(exc: CoreError) -> str:
    if isinstance(exc, ConfigError):
        return "invalid settings: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    return str(exc)


def install_stop_handlers(stop: threading.Event, printer) -> dict:
    """First Ctrl+C (or SIGTERM) asks for a stop; a second Ctrl+C aborts."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    asked = []

    def handle(signum, frame):
        # The run clears its stop Event once training has stopped, so remember the first Ctrl+C here.
        if asked and signum == signal.SIGINT:
            raise KeyboardInterrupt
        asked.append(signum)
        stop.set()
        printer.note(f"stopping: {stop_note(printer.stage)} (Ctrl+C again aborts)")

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handle)
    return previous


class Printer:
    """Prints events; remembers the run's stage so a stop can say what it will do."""

    stage: str | None = None

    def __call__(self, event) -> None:
        if type(event).__name__ == "StageChanged":
            self.stage = event.stage
        self.show(event)

    def show(self, event) -> None:
        raise NotImplementedError

    def note(self, message: str) -> None:
        raise NotImplementedError


class JsonPrinter(Printer):
    """Prints each event as one JSON line."""

    def show(self, event) -> None:
        print(json_line(event.to_dict(), default=str), flush=True)

    def note(self, message: str) -> None:
        print(json.dumps({"event": "Note", "message": message}), file=sys.stderr, flush=True)


class ProgressPrinter(Printer):
    """One readable line per event (a run's end says which evaluation its saved model comes from); the elapsed
    time of a resumed run counts its earlier segments too."""

    def __init__(self) -> None:
        from core.runs.progress import RunProgress

        self.progress = RunProgress()

    def prime(self, history: list) -> None:
        """Take in a run's earlier events without printing them (a resume in the foreground)."""
        for event in history:
            self.progress.apply(event)

    def show(self, event) -> None:
        self.progress.apply(event)
        if type(event).__name__ == "StepLogged":
            event = dataclasses.replace(event, elapsed=self.progress.elapsed)
        line = format_event(event)
        if line:
            say(line)
        for line in (format_kept(getattr(event, "kept", None)), phase_line(getattr(event, "phases", None))):
            if line:
                say(line)

    def note(self, message: str) -> None:
        say(message, file=sys.stderr)


class ProgressLine:
    """`done/total` on standard error about once a second, for lists long enough to wait for."""

    def __init__(self, verb: str, min_total: int = 2000, interval: float = 1.0):
        self.verb, self.min_total, self.interval, self.last = verb, min_total, interval, 0.0

    def __call__(self, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if total < self.min_total or (now - self.last < self.interval and done < total):
            return
        self.last = now
        end = "\n" if done >= total or not sys.stderr.isatty() else "\r"
        print(f"{self.verb} {done:,}/{total:,} reviews", end=end, file=sys.stderr, flush=True)
