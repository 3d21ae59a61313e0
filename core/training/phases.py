"""Where a run's time goes: seconds per stage, recorded in metrics.json as `phases` and shown by train and F4."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

ORDER = ("checks", "data", "gpu", "model", "tokenize", "setup", "baseline", "training", "evaluation", "checkpoints",
         "calibration", "test", "save")
"""The stages, in the order a run goes through them (a resumed run skips the baseline)."""
NAMES = {"checks": "checks", "data": "loading data", "gpu": "finding a GPU (and waiting for one)",
         "model": "loading the model", "tokenize": "tokenizing",
         "setup": "setting up", "baseline": "scoring the untuned model", "training": "training steps",
         "evaluation": "evaluations", "checkpoints": "checkpoints (what training waited for)", "calibration": "calibration",
         "test": "test", "save": "saving", "other": "other"}


class Phases:
    """A run's stopwatch: `with phases("data"): ...` adds the block's seconds to that stage."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + max(seconds, 0.0)

    def record(self) -> dict[str, float]:
        """Seconds per stage in ORDER, `other` for the rest, and `wall`: from the start of the run until now."""
        wall = time.perf_counter() - self.started
        named = {name: round(self.seconds[name], 3) for name in ORDER if name in self.seconds}
        return {**named, "other": round(max(wall - sum(self.seconds.values()), 0.0), 3), "wall": round(wall, 3)}


def phase_line(phases: dict[str, float] | None) -> str | None:
    """'time: loading data 1.2s · ... · total 14.3s', the stages that took a tenth of a second or more."""
    if not isinstance(phases, dict) or not isinstance(phases.get("wall"), (int, float)):
        return None
    from core.format import format_seconds

    parts = [f"{NAMES.get(k, k)} {format_seconds(v)}" for k, v in phases.items()
             if k != "wall" and isinstance(v, (int, float)) and v >= 0.1]
    return "time: " + " · ".join(parts + [f"total {format_seconds(phases['wall'])}"])
