"""What a report shows about a run, and how two runs differ, rebuilt from run folders alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import CoreError, RunError
from core.runs.checkpoints import has_complete_checkpoint
from core.runs.layout import RunStatus
from core.runs.progress import RunProgress, baseline_gain
from core.runs.store import Run, RunInfo, run_info, selection_score


@dataclass(frozen=True)
class RunReport:
    """Everything the report screen shows about one run; missing parts are empty or None."""

    info: RunInfo
    label_names: list[str] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    """One row per evaluation: step, epoch, loss, accuracy, precision, recall, f1."""
    best: int | None = None
    """Index in `validation` of the best evaluation (by macro F1), the one the model was kept from."""
    test: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    gain: dict[str, float] = field(default_factory=dict)
    """Points gained over the baseline (accuracy, f1), fine-tuned minus untuned, times 100."""
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    validation_loss: list[tuple[int, float]] = field(default_factory=list)
    misclassified: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Files that could not be read, said in one line each."""
    resumable: bool = False
    """Whether the run has a complete checkpoint to resume from."""
    calibration: dict[str, Any] | None = None
    """The temperature fitted on validation and the test ECE before and after it (metrics.json)."""
    reliability: list[dict[str, Any]] = field(default_factory=list)
    """Test confidence bins as reported: low, high, count, confidence, accuracy."""
    diagnostics: list[Any] = field(default_factory=list)
    """What the coach said during the run (core.events.Diagnostic), in order."""
    kept: dict[str, Any] | None = None
    """The evaluation the saved model comes from: step, epoch, validation macro F1 (metrics.json `kept`)."""
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per stage of the run's last segment and its wall time (metrics.json `phases`)."""

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def test_n(self) -> int | None:
        """How many test reviews the test metrics are over."""
        if not self.test:
            return None
        if "n" in self.test:
            return int(self.test["n"])
        matrix = self.test.get("confusion_matrix")
        return sum(sum(row) for row in matrix) if matrix else None

    def curve(self, metric: str) -> list[tuple[float, float]]:
        """(epoch, value) of a validation metric, one point per evaluation."""
        return [(float(row["epoch"]), float(row[metric])) for row in self.validation if metric in row]


def best_index(validation: list[dict[str, Any]]) -> int | None:
    """Index of the best evaluation by SELECTION_METRIC (the first of equals), as training keeps the best model."""
    if not validation:
        return None
    return max(range(len(validation)), key=lambda i: (selection_score(validation[i]), -i))


def misclassified(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Test predictions that were wrong, most confident first (rows with a damaged confidence are skipped)."""
    wrong = [r for r in rows if r.get("predicted") != r.get("label") and _is_number(r.get("confidence", 0.0))]
    return sorted(wrong, key=lambda r: -float(r.get("confidence") or 0.0))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, value in a, value in b) for every field whose values differ, in a's field order."""
    keys = list(a) + [k for k in b if k not in a]
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


def shown_value(value: Any) -> str:
    """A config value as a form would show it."""
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "(auto)"
    if value == "":
        return "(auto)"
    return str(value)


def _eval_dict(event) -> dict[str, Any]:
    return {**event.metrics, "confusion_matrix": event.confusion_matrix, "label_names": event.label_names}


def load_report(path: str | Path) -> RunReport:
    """Read one run folder into a RunReport; a damaged folder gives what could be read, never an error.

    Raises RunError only when the folder itself is gone or is not a run.
    """
    run = Run(path)
    info = run_info(run.path)
    if info.status == RunStatus.UNREADABLE:
        return RunReport(info=info, notes=[info.error or "the run folder is damaged"])
    notes: list[str] = []
    try:
        metrics = run.metrics
    except RunError as exc:
        metrics = {}
        notes.append(str(exc))
    progress = RunProgress.from_events(run.events())
    validation = list(metrics.get("validation") or [])
    if not validation:
        validation = [{"step": e.step, "epoch": e.epoch, **e.metrics} for e in progress.validation]
    test = metrics.get("test") or (_eval_dict(progress.test) if progress.test else None)
    baseline = metrics.get("baseline") or (_eval_dict(progress.baseline) if progress.baseline else None)
    record = run.config_record
    try:
        config = run.train_config().to_dict()
    except CoreError:
        config = dict(record.get("config") or {})  # saved by another version: compare it as written
    labels = list((test or {}).get("label_names") or record.get("label_names") or [])
    kept = kept_of(metrics, validation, progress)
    steps = [row.get("step") for row in validation]
    return RunReport(
        info=info,
        label_names=labels,
        validation=validation,
        best=steps.index(kept["step"]) if kept and kept["step"] in steps else best_index(validation),
        test=test,
        baseline=baseline,
        gain=baseline_gain(baseline, test),
        train_loss=list(progress.train_loss),
        validation_loss=progress.validation_loss,
        misclassified=misclassified(run.test_predictions()),
        config=config,
        notes=notes,
        resumable=has_complete_checkpoint(run.path),
        calibration=metrics.get("calibration"),
        reliability=list(metrics.get("reliability") or []),
        diagnostics=list(progress.diagnostics),
        kept=kept,
        phases={k: float(v) for k, v in (metrics.get("phases") or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)},
    )


def kept_of(metrics: dict[str, Any], validation: list[dict[str, Any]], progress: RunProgress) -> dict[str, Any] | None:
    """Which evaluation a run's saved model comes from: as the run recorded it, or (older runs) from the best
    checkpoint's name; None when the run saved no model."""
    kept = metrics.get("kept") or progress.kept
    if isinstance(kept, dict) and isinstance(kept.get("step"), int):
        return kept
    best = metrics.get("best_checkpoint")
    if isinstance(best, str) and best.rsplit("-", 1)[-1].isdigit():
        step = int(best.rsplit("-", 1)[-1])
        row = next((r for r in validation if r.get("step") == step), {})
        return {"step": step, "epoch": row.get("epoch"), "f1_macro": row.get("f1_macro")}
    return None


def format_accuracy(report: dict[str, Any]) -> str:
    """'accuracy 85.0% (95% CI 73.9–91.9%)', the interval left out when the report has none."""
    text = f"accuracy {report['accuracy']:.1%}"
    if "accuracy_ci_low" in report and "accuracy_ci_high" in report:
        text += f" (95% CI {report['accuracy_ci_low'] * 100:.1f}–{report['accuracy_ci_high']:.1%})"
    return text
