"""The coach: watches a run's events and says, as it happens, when something is going wrong and what to change.

Each kind of diagnostic fires at most once per run, as a `Diagnostic` event (written to events.jsonl like
any other, printed by the CLI, shown on F3 and summarised on F4). The thresholds are here, in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.events import Diagnostic, EvalCompleted, Event, Resumed, StepLogged, TrainingStarted
from core.format import number

SMOOTH = 3
"""Logged losses averaged before comparing: one noisy batch must not raise an alarm."""
DIVERGE_FACTOR = 1.5
"""Smoothed loss this many times its starting value: the updates are making the model worse, not noisier.
A cross-entropy that starts near log(classes) and grows by half is far outside normal fluctuation. The
starting value is never taken above log(classes), where a new classifier head starts: a loss that explodes
within the first logged steps (lr 1.0: 0.69, 101, 188) already lifts the mean of the first losses."""
FLAT_AFTER = 1.0
"""Judge 'no progress' only after the whole first epoch: a pretrained model at a course learning rate often
stays near log(2) for most of it (MiniLM on 1,050 MR sentences at lr 5e-5: flat until step 50 of 66, then 0.61)."""
FLAT_DROP = 0.03
"""Less than 3% below the starting loss by then counts as flat: that MiniLM run was 12% below it at step 66."""
FLAT_MIN_POINTS = 4
"""Logged losses needed before judging flatness (a very short run logs too few to tell)."""
COLLAPSE_SHARE = 0.95
"""An evaluation predicting one class for this share of reviews has collapsed (unless the data is that skewed)."""
OVERFIT_RISES = 2
"""Consecutive evaluations with a rising validation loss (while the training loss falls) that mean overfitting."""
TRUNCATED_SHARE = 0.2
"""More than a fifth of the training reviews cut at max_length: the model misses the ends of many reviews."""
IMBALANCE_SHARE = 0.75
"""One class holding three quarters of the training split: accuracy flatters a model that favours it."""
HIGH_LEARNING_RATE = 1e-3
"""Above it a pretrained model is usually wrecked rather than fine-tuned (its loss explodes in a few steps);
fine-tuning usually uses 1e-5 to 1e-4. A tiny model trained from scratch may want more: a warning only."""


def _diag(kind: str, step: int, message: str, advice: str) -> Diagnostic:
    return Diagnostic(kind=kind, step=step, message=message, advice=advice)


def learning_rate_warning(learning_rate: float) -> str | None:
    """What is unusual about a learning rate for fine-tuning (None: nothing); said on F2 and when a run starts."""
    if learning_rate <= HIGH_LEARNING_RATE:
        return None
    return (f"{number(learning_rate)} is high for fine-tuning, which usually uses 1e-5 to 1e-4 (above "
            f"{number(HIGH_LEARNING_RATE)} the loss often explodes)")


def settings_diagnostics(learning_rate: float) -> list[Diagnostic]:
    """Warnings about the run's settings, said before it trains."""
    warning = learning_rate_warning(learning_rate)
    if warning is None:
        return []
    return [_diag("high_learning_rate", 0, f"learning_rate {warning}",
                  "start again with 2e-5 to 5e-5, or measure one with sentitune lr-find (ctrl+f on F2)")]


def data_diagnostics(lengths: Sequence[int], max_length: int, labels: Sequence[int],
                     label_names: Sequence[str]) -> list[Diagnostic]:
    """Warnings about the training split itself: reviews cut at max_length, and a skewed label balance."""
    out = []
    if lengths:
        cut = sum(1 for n in lengths if n >= max_length) / len(lengths)
        if cut > TRUNCATED_SHARE:
            out.append(_diag(
                "truncation", 0, f"{cut:.0%} of the training reviews are cut at max_length {max_length}",
                "raise max_length (up to the model's limit) so the model reads whole reviews, at some cost in speed"))
    if labels:
        counts = [sum(1 for y in labels if y == i) for i in range(len(label_names))]
        top = max(range(len(counts)), key=counts.__getitem__)
        share = counts[top] / len(labels)
        if share >= IMBALANCE_SHARE:
            out.append(_diag(
                "imbalance", 0, f"'{label_names[top]}' is {share:.0%} of the training split",
                "judge the model by F1 (macro F1 with several classes), not accuracy, and compare it with the untuned "
                "baseline; more reviews of the other classes help most"))
    return out


class Coach:
    """Feed it every event of a run (`observe`); it returns the diagnostics that event triggers."""

    def __init__(self, learning_rate: float | None = None) -> None:
        self.learning_rate = learning_rate
        """The run's, so advice about it starts from where the run is (none: a general hint)."""
        self.fired: set[str] = set()
        self.losses: list[tuple[int, float]] = []
        self.steps_per_epoch: int | None = None
        self.initial_loss: float | None = None
        """log(number of classes): the cross-entropy of a classifier that has learned nothing yet."""
        self.validation: list[tuple[int, float, float]] = []  # (step, validation loss, training loss then)
        self.baseline: dict[str, float] | None = None
        self.nan_step: int | None = None
        """The step whose loss was not a number: the run must stop (the session checks this)."""

    def observe(self, event: Event) -> list[Diagnostic]:
        """The diagnostics `event` triggers. Fed a resumed run's earlier events first, it judges the new
        segment's losses against the run's start, not against themselves."""
        found: list[Diagnostic] = []
        if isinstance(event, Resumed):  # what was logged after the checkpoint was lost with its process
            self.losses = [p for p in self.losses if p[0] <= event.step]
            self.validation = [v for v in self.validation if v[0] <= event.step]
            self.nan_step = None
        elif isinstance(event, TrainingStarted):
            self.steps_per_epoch = event.steps_per_epoch
            classes = len(event.label_names or ())
            self.initial_loss = math.log(classes) if classes > 1 else None
        elif isinstance(event, StepLogged) and event.loss is not None:
            found += self._step(event.step, event.loss)
        elif isinstance(event, EvalCompleted):
            found += self._evaluation(event)
        found = [d for d in found if d.kind not in self.fired]
        self.fired.update(d.kind for d in found)
        return found

    def _smoothed(self, points: list[tuple[int, float]]) -> float:
        return sum(loss for _, loss in points) / len(points)

    def _step(self, step: int, loss: float) -> list[Diagnostic]:
        if not math.isfinite(loss):
            self.nan_step = step
            return [_diag("nan_loss", step, f"the training loss became {loss} at step {step}",
                          "the run stops and keeps its last good checkpoint; start again with a learning rate 10x "
                          "lower, or precision fp32 if it ran in fp16")]
        self.losses.append((step, loss))
        # With the initial loss known, SMOOTH losses tell an explosion; else `now` needs its own SMOOTH after `start`.
        if len(self.losses) < (SMOOTH if self.initial_loss is not None else 2 * SMOOTH):
            return []
        start, now = self._smoothed(self.losses[:SMOOTH]), self._smoothed(self.losses[-SMOOTH:])
        reference = start if self.initial_loss is None else min(start, self.initial_loss)
        lowest = min(loss for _, loss in self.losses)
        out = []
        # Above the lowest loss too: a head that starts confidently wrong (above log(classes)) and falls is fine.
        if now > DIVERGE_FACTOR * reference and now > DIVERGE_FACTOR * lowest:
            out.append(_diag("diverging", step, f"the training loss rose from {reference:.3f} to {now:.3f}",
                             "the learning rate is too high for this model: try 3-10x lower, or add warmup_ratio 0.1"))
        if len(self.losses) < 2 * SMOOTH:
            return out
        first_epoch = [p for p in self.losses if self.steps_per_epoch is None or p[0] <= self.steps_per_epoch]
        judged = self.steps_per_epoch is not None and step >= FLAT_AFTER * self.steps_per_epoch
        if judged and len(first_epoch) >= FLAT_MIN_POINTS and now > (1 - FLAT_DROP) * start \
                and "diverging" not in self.fired and not out:
            out.append(_diag(
                "loss_flat", step, f"the training loss has not fallen ({start:.3f} at the start, {now:.3f} now)",
                f"{self._learning_rate_hint()}; check that the labels match the texts (shuffled labels cannot be "
                "learned)"))
        return out

    def _learning_rate_hint(self) -> str:
        if self.learning_rate is None:
            return "the learning rate may be too low (try 5e-5 or 1e-4 for a small model) or too high"
        lr = self.learning_rate
        return (f"the learning rate ({number(lr)}) may be too low (try {number(float(f'{3 * lr:.2g}'))} or "
                f"{number(10 * lr)}) or too high; "
                "sentitune lr-find (ctrl+f on F2) measures it")

    def _evaluation(self, event: EvalCompleted) -> list[Diagnostic]:
        metrics = event.metrics
        if event.split == "baseline":
            self.baseline = dict(metrics)
            return []
        out = []
        if event.split == "test" and self.baseline:
            if metrics.get("accuracy", 1) < self.baseline.get("accuracy", 0) and \
                    metrics.get("f1", 1) < self.baseline.get("f1", 0):
                out.append(_diag(
                    "worse_than_baseline", event.step,
                    f"the fine-tuned model scores below the untuned one (accuracy {metrics['accuracy']:.1%} vs "
                    f"{self.baseline['accuracy']:.1%})",
                    "training made it worse: check the learning rate (usually too high) and the labels, then train again"))
            return out
        if event.split != "validation":
            return out
        matrix = event.confusion_matrix
        total = sum(sum(row) for row in matrix)
        if total:
            predicted = [sum(row[j] for row in matrix) for j in range(len(matrix))]
            top = max(range(len(predicted)), key=predicted.__getitem__)
            actual = sum(matrix[top]) / total
            share = predicted[top] / total
            if share >= COLLAPSE_SHARE and actual < COLLAPSE_SHARE:
                name = event.label_names[top] if top < len(event.label_names) else str(top)
                out.append(_diag(
                    "collapsed_predictions", event.step, f"{share:.0%} of the validation reviews are predicted '{name}'",
                    "the model has learned to always answer one class: lower the learning rate, train longer, or "
                    "balance the classes"))
        loss = metrics.get("loss")
        if loss is not None and math.isfinite(loss):
            recent = [p for p in self.losses if p[0] <= event.step][-SMOOTH:]
            self.validation.append((event.step, loss, self._smoothed(recent) if recent else math.nan))
            out += self._overfitting(event.step)
        return out

    def _overfitting(self, step: int) -> list[Diagnostic]:
        last = self.validation[-(OVERFIT_RISES + 1):]
        if len(last) < OVERFIT_RISES + 1:
            return []
        rising = all(b[1] > a[1] for a, b in zip(last, last[1:]))
        falling = all(b[2] < a[2] for a, b in zip(last, last[1:]))
        if not (rising and falling):
            return []
        return [_diag("overfitting", step,
                      f"the validation loss rose {OVERFIT_RISES} evaluations running ({last[0][1]:.3f} → {last[-1][1]:.3f}) "
                      "while the training loss fell",
                      "the model is memorising the training reviews; the best evaluation (by validation macro F1) is the one "
                      "kept. Train fewer epochs, or set early_stopping_patience")]
