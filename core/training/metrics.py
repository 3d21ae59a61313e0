"""Evaluation metrics: accuracy with a Wilson interval, precision/recall/F1, confusion matrix."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SCALAR_KEYS = ("accuracy", "precision", "recall", "f1", "f1_macro", "accuracy_ci_low", "accuracy_ci_high")
REPORTED = (*SCALAR_KEYS, "loss")  # what evaluation events and metrics.json keep


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion `correct / n`."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def evaluate_predictions(y_true, y_pred, label_names: list[str]) -> dict[str, Any]:
    """Full report. Precision, recall and F1 are macro averages (each class's, averaged), for two classes too: the
    one F1 the app, the command line, the run list and the selection of the kept model all use. Each class's own
    figures (the positive class's F1 of scikit-learn's binary default among them) are in `per_class`."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = list(range(len(label_names)))
    n = int(y_true.size)
    correct = int((y_true == y_pred).sum())
    low, high = wilson_interval(correct, n)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    precision, recall, f1 = float(p.mean()), float(r.mean()), float(f.mean())
    return {
        "accuracy": correct / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_macro": float(f.mean()),  # picks the best evaluation (core.runs.store.SELECTION_METRIC)
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "n": n,
        "average": "macro",
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "label_names": list(label_names),
    }


def scalars(report: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of a report."""
    return {k: float(report[k]) for k in SCALAR_KEYS if k in report}


class MetricsComputer:
    """`compute_metrics` for the Trainer that also keeps the last full report (confusion matrix...)."""

    def __init__(self, label_names: list[str]):
        self.label_names = label_names
        self.last: dict[str, Any] | None = None

    def __call__(self, eval_pred) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        self.last = evaluate_predictions(labels, np.argmax(logits, axis=-1), self.label_names)
        return scalars(self.last)
