"""Training events: plain frozen dataclasses, their JSON form, and the run's events.jsonl."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class Event:
    """Base of every event; `time` is the Unix time it happened."""

    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class StageChanged(Event):
    """The run moved to a new stage (loading data, tokenizing, baseline, training, testing, saving)."""

    stage: str
    detail: str = ""


@dataclass(frozen=True)
class TrainingStarted(Event):
    """The optimizer loop is about to begin."""

    run_dir: str
    model: str
    dataset: str
    device: str
    precision: str
    epochs: int
    total_steps: int
    steps_per_epoch: int
    effective_batch: int
    samples: dict[str, int]
    label_names: list[str]
    per_device_batch: int = 0
    processes: int = 1
    gradient_accumulation: int = 1


@dataclass(frozen=True)
class Resumed(Event):
    """Training continues from a checkpoint; history after `step` is replaced by what follows."""

    step: int
    checkpoint: str


@dataclass(frozen=True)
class StepLogged(Event):
    """Progress of the optimizer loop, about once a second (or as `logging_steps` says)."""

    step: int
    total_steps: int
    epoch: float
    loss: float | None
    learning_rate: float | None
    grad_norm: float | None
    samples_per_second: float
    elapsed: float
    eta: float
    gpu_memory_used: int | None = None
    gpu_memory_total: int | None = None


@dataclass(frozen=True)
class EvalCompleted(Event):
    """An evaluation on `split` ("validation", "test" or "baseline") finished."""

    split: str
    step: int
    epoch: float
    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    label_names: list[str]


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """A checkpoint was written."""

    step: int
    epoch: float
    path: str


@dataclass(frozen=True)
class TrainingFinished(Event):
    """The run completed: the best model is saved and tested."""

    run_dir: str
    test: dict[str, float]
    train_runtime: float
    train_samples_per_second: float
    kept: dict[str, Any] | None = None
    """The evaluation the saved model comes from: step, epoch, validation macro F1 (None in older runs)."""
    phases: dict[str, float] | None = None
    """Seconds per stage of this segment (core.training.phases), as metrics.json records them."""


@dataclass(frozen=True)
class TrainingStopped(Event):
    """The user stopped the run; the model so far is saved and tested (when training had begun)."""

    run_dir: str
    step: int
    test: dict[str, float] | None
    saved: bool | None = None
    """Whether a model was saved; None in runs recorded before this was kept (then: whether it was tested)."""
    kept: dict[str, Any] | None = None
    """The evaluation the saved model comes from (step, epoch, validation macro F1), when one was saved."""
    phases: dict[str, float] | None = None
    """Seconds per stage of this segment, when a model was saved."""


@dataclass(frozen=True)
class TrainingFailed(Event):
    """The run failed; `message` says what happened and what to change."""

    run_dir: str
    title: str
    message: str
    kind: str = "error"
    """"oom" (out of memory while training), "oom_eval" (while evaluating) or "error"."""


@dataclass(frozen=True)
class Diagnostic(Event):
    """The coach noticed something going wrong (core.training.coach): what, at which step, and what to change."""

    kind: str
    """nan_loss, diverging, loss_flat, collapsed_predictions, overfitting, worse_than_baseline, truncation, imbalance,
    high_learning_rate."""
    step: int
    message: str
    advice: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        StageChanged, TrainingStarted, Resumed, StepLogged, EvalCompleted, CheckpointSaved,
        TrainingFinished, TrainingStopped, TrainingFailed, Diagnostic,
    )
}
TERMINAL_EVENTS = (TrainingFinished, TrainingStopped, TrainingFailed)


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON form (unknown keys are ignored for forward compatibility)."""
    cls = EVENT_TYPES[data["event"]]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def parse_events(lines: list[str]) -> list[Event]:
    """Events from JSON lines; a truncated or unknown line is skipped, not fatal."""
    events = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            events.append(event_from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return events


def read_events(path: str | Path) -> list[Event]:
    """Every event in an events.jsonl file."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return parse_events(text.splitlines())


class EventLog:
    """Appends events to events.jsonl, flushing each so a reader sees it at once."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh: TextIO = self.path.open("a", encoding="utf-8")

    def write(self, event: Event) -> None:
        self._fh.write(json.dumps(event.to_dict(), default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
