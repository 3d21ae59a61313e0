"""Scoring inside a run: the untuned baseline, the test of the kept model, and the temperature that calibrates it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def seeded_subset(ds, n: int, seed: int):
    """`n` rows of a length-sorted split, chosen at random but kept in length order."""
    import random

    return ds.select(sorted(random.Random(seed).sample(range(len(ds)), n)))


def score_baseline(job, trainer, test, computer) -> dict[str, Any]:
    """The untuned model on the test split, or on a seeded sample of it (`baseline_samples`)."""
    from core.events import StageChanged

    config = job.config
    total = len(test)
    if config.baseline_samples and total > config.baseline_samples:
        test = seeded_subset(test, config.baseline_samples, config.seed)
        what = f"{len(test):,} of the {total:,} test reviews (a seeded sample; baseline_samples)"
    else:
        what = f"the {total:,} test reviews"
    job.emit(StageChanged("baseline", f"scoring the untuned model on {what}"))
    baseline = evaluate(job, trainer, test, computer, "baseline", 0, 0.0)
    baseline["sampled_from"] = total
    return baseline


def fit_temperature(job, trainer, validation):
    """The temperature that calibrates the kept model's confidences, fitted on the validation split where that
    helps (core.training.calibration.choose_temperature): a TemperatureChoice."""
    import numpy as np

    from core.events import StageChanged
    from core.training.calibration import choose_temperature as fit
    from core.training.tokenize import model_inputs

    job.emit(StageChanged("test", "calibrating confidences on the validation split"))
    output = trainer.predict(model_inputs(validation), metric_key_prefix="calibration")
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return fit(np.asarray(logits, dtype=np.float64), np.asarray(validation["label"]))


def evaluate(job, trainer, ds, computer, split: str, step: int, epoch: float, predictions_file: Path | None = None,
             temperature: float | None = None) -> dict[str, Any]:
    """Score `ds`, emit EvalCompleted, optionally save per-review predictions; returns the full report.

    With a `temperature`, probabilities are calibrated (logits / temperature), and the report gains the
    expected calibration error of what is reported (`ece`) and, in the job's metrics, before and after.
    """
    import numpy as np

    from core.events import EvalCompleted
    from core.training.calibration import ece_interval, expected_calibration_error, reliability, scaled_softmax
    from core.training.distributed import is_main
    from core.training.tokenize import model_inputs

    output = trainer.predict(model_inputs(ds), metric_key_prefix=split)
    report = dict(computer.last or {})
    report["loss"] = float(output.metrics.get(f"{split}_loss", float("nan")))
    logits = np.asarray(output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions,
                        dtype=np.float64)
    labels = np.asarray(ds["label"])
    probs = scaled_softmax(logits, temperature or 1.0)
    if split == "test" and len(labels):
        report["ece"] = expected_calibration_error(probs, labels)
        report["ece_ci_low"], report["ece_ci_high"] = ece_interval(probs, labels)
        if job.metrics.get("calibration") is not None:  # calibrate = true: the ECE before and after (if applied)
            raw = scaled_softmax(logits)
            job.metrics["calibration"] = {
                **job.metrics["calibration"], "fitted_on": "validation",
                "ece_before": expected_calibration_error(raw, labels), "ece_before_ci": list(ece_interval(raw, labels)),
                "ece_after": report["ece"] if temperature is not None else None,
                "ece_after_ci": [report["ece_ci_low"], report["ece_ci_high"]] if temperature is not None else None,
            }
        job.metrics["reliability"] = [b.to_dict() for b in reliability(probs, labels)]
    names = job.data.label_names
    job.emit(EvalCompleted(
        split=split, step=step, epoch=epoch,
        metrics={k: float(v) for k, v in report.items() if isinstance(v, (int, float))},
        confusion_matrix=report.get("confusion_matrix", []), label_names=names,
    ))
    if predictions_file is not None and is_main():
        write_predictions(predictions_file, ds["text"], ds["label"], probs, names)
    return report


def write_predictions(path: Path, texts, labels, probs, names: list[str]) -> None:
    """The test split's per-review predictions (text, label, predicted, confidence, probabilities), written
    whole or not at all: the file always belongs to one model."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", encoding="utf-8") as fh:
        for text, label, row in zip(texts, labels, probs):
            pred = int(row.argmax())
            fh.write(json.dumps({
                "text": text, "label": names[label], "predicted": names[pred],
                "confidence": float(row[pred]), "correct": pred == label,
                "probabilities": {n: float(p) for n, p in zip(names, row)},
            }) + "\n")
    os.replace(partial, path)
