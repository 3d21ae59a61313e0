"""The state of a run as a dashboard shows it, rebuilt by folding its events in order."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.events import (
    CheckpointSaved,
    Diagnostic,
    EvalCompleted,
    Event,
    Resumed,
    StageChanged,
    StepLogged,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
    TrainingStopped,
)
from core.format import format_event
from core.runs.layout import ENDED, RunStatus

LOG_LINES = 200


@dataclass
class RunProgress:
    """Everything a training dashboard needs, built only from events (live or from events.jsonl)."""

    run_dir: str | None = None
    stage: str = "idle"
    detail: str = ""
    status: str = "idle"  # idle, running, finished, stopped, failed
    started: TrainingStarted | None = None
    last_step: StepLogged | None = None
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    validation: list[EvalCompleted] = field(default_factory=list)
    baseline: EvalCompleted | None = None
    test: EvalCompleted | None = None
    checkpoints: list[CheckpointSaved] = field(default_factory=list)
    error: TrainingFailed | None = None
    stopped: TrainingStopped | None = None
    """How the last segment was stopped (whether a model was saved and tested), while it is the last."""
    kept: dict[str, Any] | None = None
    """The evaluation the saved model comes from (step, epoch, validation macro F1), once the run said so."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    """What the coach said, in order (core.training.coach)."""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    """The last LOG_LINES lines of the run's log."""
    log_total: int = 0
    """Lines ever added to `log` (it keeps only the last ones): a view draws the lines it has not drawn yet."""
    version: int = 0  # bumped by every event, so a view can tell whether to redraw
    elapsed_before: float = 0.0
    """Training time of the processes before the latest resume (a process's own steps count from 0)."""
    _steps_since_resume: bool = True

    @classmethod
    def from_events(cls, events: list[Event]) -> RunProgress:
        progress = cls()
        for event in events:
            progress.apply(event)
        return progress

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        self.version += 1
        line = format_event(event)
        if line and not isinstance(event, StepLogged):
            lines = line.splitlines()
            self.log.extend(lines)
            self.log_total += len(lines)
        if self.status == "idle":
            self.status = RunStatus.RUNNING
        if isinstance(event, StageChanged):
            self.stage, self.detail = event.stage, event.detail
        elif isinstance(event, TrainingStarted):
            self.started = event
            self.run_dir = event.run_dir
        elif isinstance(event, Resumed):
            # Steps logged after the checkpoint were lost with the process; what follows replaces them.
            self.train_loss = [(s, v) for s, v in self.train_loss if s <= event.step]
            self.validation = [e for e in self.validation if e.step <= event.step]
            self.checkpoints = [c for c in self.checkpoints if c.step <= event.step]
            self.status, self.error, self.test, self.stopped, self.kept = RunStatus.RUNNING, None, None, None, None
            self.elapsed_before, self._steps_since_resume = self.elapsed, False
        elif isinstance(event, StepLogged):
            self.last_step, self._steps_since_resume = event, True
            if event.loss is not None:
                self.train_loss.append((event.step, event.loss))
        elif isinstance(event, EvalCompleted):
            if event.split == "validation":
                self.validation.append(event)
            elif event.split == "baseline":
                self.baseline = event
            elif event.split == "test":
                self.test = event
        elif isinstance(event, Diagnostic):
            if all(d.kind != event.kind for d in self.diagnostics):  # a resumed run may repeat one
                self.diagnostics.append(event)
        elif isinstance(event, CheckpointSaved):
            self.checkpoints.append(event)
        elif isinstance(event, TrainingFinished):
            self.status, self.stage, self.run_dir, self.kept = RunStatus.FINISHED, "finished", event.run_dir, event.kept
        elif isinstance(event, TrainingStopped):
            self.status, self.stage, self.run_dir, self.stopped = RunStatus.STOPPED, "stopped", event.run_dir, event
            self.kept = event.kept
        elif isinstance(event, TrainingFailed):
            self.status, self.stage, self.error = RunStatus.FAILED, "failed", event
            self.run_dir = event.run_dir or self.run_dir

    @property
    def done(self) -> bool:
        return self.status in ENDED

    @property
    def step(self) -> int:
        return self.last_step.step if self.last_step else 0

    @property
    def total_steps(self) -> int:
        if self.last_step:
            return self.last_step.total_steps
        return self.started.total_steps if self.started else 0

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, across resumes."""
        current = self.last_step.elapsed if self.last_step is not None and self._steps_since_resume else 0.0
        return self.elapsed_before + current

    @property
    def epoch(self) -> float:
        return self.last_step.epoch if self.last_step else 0.0

    @property
    def fraction(self) -> float:
        """Share of optimizer steps done."""
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def validation_loss(self) -> list[tuple[int, float]]:
        return [(e.step, e.metrics["loss"]) for e in self.validation if "loss" in e.metrics]

    def curve(self, metric: str) -> list[tuple[float, float]]:
        """(epoch, value) of a validation metric, one point per evaluation."""
        return [(e.epoch, e.metrics[metric]) for e in self.validation if metric in e.metrics]

    @property
    def gain(self) -> dict[str, float]:
        """Points the fine-tuned model gained over the untuned one on the test split (accuracy, f1); losses negative."""
        return baseline_gain(self.baseline.metrics if self.baseline else None, self.test.metrics if self.test else None)

    @property
    def latest_eval(self) -> EvalCompleted | None:
        """The newest evaluation worth showing: test once it exists, else the last validation."""
        return self.test or (self.validation[-1] if self.validation else None)


GAIN_KEYS = ("accuracy", "f1")


def baseline_gain(baseline: dict[str, Any] | None, test: dict[str, Any] | None) -> dict[str, float]:
    """Points gained by fine-tuning, per metric both reports have."""
    if not baseline or not test:
        return {}
    return {k: (float(test[k]) - float(baseline[k])) * 100 for k in GAIN_KEYS if k in test and k in baseline}
