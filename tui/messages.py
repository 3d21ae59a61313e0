"""Messages from the training thread to the UI."""

from __future__ import annotations

from textual.message import Message

from core.events import Event


class TrainingEvent(Message):
    """A core event, posted from the training thread with `post_message` (thread-safe, non-blocking).

    Events arrive about once a second, and each is folded into the app's RunProgress so charts
    keep every point; redraws are throttled by the views instead of dropping events here.
    """

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class TrainingHistory(Message):
    """A followed run's events written before the app began to follow it, folded in one go."""

    def __init__(self, run_dir: str, events: list[Event]) -> None:
        super().__init__()
        self.run_dir, self.events = run_dir, events


class SweepPointEnded(Message):
    """A sweep's run `index` of `total` ended: `status` (finished, stopped, failed, pruned) and, when the pruner
    stopped it, why (`pruned`)."""

    def __init__(self, index: int, total: int, status: str, run_dir: str | None, pruned: str | None) -> None:
        super().__init__()
        self.index, self.total, self.status, self.run_dir, self.pruned = index, total, status, run_dir, pruned


class SweepPoint(Message):
    """A sweep started its run `index` of `total` (settings: what that run varies; run_dir: its folder, which
    holds the history of a run the sweep resumes)."""

    def __init__(self, sweep: str, index: int, total: int, settings: dict, run_dir: str | None = None) -> None:
        super().__init__()
        self.sweep, self.index, self.total, self.settings = sweep, index, total, settings
        self.run_dir = run_dir
