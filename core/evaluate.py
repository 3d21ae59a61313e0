"""Score a saved run's model on its own test split or on another dataset; a run whose test was stopped gets the
test recorded (and its confidences calibrated, when the run calibrates) so the run is complete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DatasetError
from core.runs import layout
from core.runs.store import Run
from core.training.calibration import ece_interval, expected_calibration_error
from core.training.metrics import evaluate_predictions


def evaluate_run(run: Run, dataset: str | None = None, batch_size: int = 64,
                 on_progress: Callable[[int, int], None] | None = None, record: bool = True) -> dict[str, Any]:
    """A metrics report for `run`'s model: on its test split, or on every row of `dataset` (its `n` says how many).

    A run saved without a test (a stop cut it short) has this test recorded in it (`recorded` in the report)
    unless `record` is False: metrics.json, test_predictions.jsonl, the card, and the temperature when the run
    calibrates and fitted none. RunError while another process holds the run.
    """
    from core.data.clean import load_clean, prepare
    from core.predict import Predictor

    config = run.train_config()
    untested = record and dataset is None and _untested(run)
    lock = None
    if untested:
        from core.runs.control import claim

        lock = claim(run.path)  # nothing else may write the run meanwhile (a resume, a second evaluate)
    try:
        prepared = None
        if untested and config.calibrate and not (run.model_dir / layout.CALIBRATION).exists():
            prepared = prepare(config)
            _calibrate(run, prepared.splits["validation"], batch_size)
        predictor = Predictor(run.path)
        if dataset is None:
            names = list(run.config_record.get("label_names") or predictor.label_names)
            rows = None if untested else _saved_test_split(run, names)
            if rows is None:  # tested runs keep their test reviews; others are split again from the data
                rows = (prepared or prepare(config)).splits["test"]
        else:
            loaded = load_clean(config.replace(dataset=dataset, dataset_config="", text_columns=(), label_column=""),
                                one_class_ok=True)
            names = loaded.mapping.names
            rows = loaded.rows
        unknown = [n for n in names if n not in predictor.label_names]
        if unknown:
            raise DatasetError(
                f"labels {', '.join(unknown)} of {dataset or config.dataset} are not ones the model knows "
                f"({', '.join(predictor.label_names)})"
            )
        texts = rows["text"].tolist()
        predictions = predictor.predict(texts, batch_size=batch_size, on_progress=on_progress)
        y_true = [predictor.label_names.index(names[i]) for i in rows["label"]]
        y_pred = [predictor.label_names.index(p.label) for p in predictions]
        report = evaluate_predictions(y_true, y_pred, predictor.label_names)
        if len(set(y_true)) == 1:
            report = _one_class_report(report, predictor.label_names[y_true[0]])
        probabilities = np.asarray([[p.probabilities[name] for name in predictor.label_names] for p in predictions])
        if len(probabilities):
            report["ece"] = expected_calibration_error(probabilities, np.asarray(y_true))
            report["ece_ci_low"], report["ece_ci_high"] = ece_interval(probabilities, np.asarray(y_true))
        report["temperature"] = predictor.temperature
        report["dataset"] = str(Path(dataset)) if dataset else config.dataset
        if untested:
            _record_test(run, report, texts, y_true, probabilities, predictor.label_names)
            report["recorded"] = True
        return report
    finally:
        if lock is not None:
            lock.release()


def _one_class_report(report: dict[str, Any], name: str) -> dict[str, Any]:
    """Scores of reviews that are all of one class: accuracy, which is that class's recall, and what cannot be
    computed said (precision and F1 need reviews of each class: averaged over classes with no review they mean
    nothing)."""
    report = {k: v for k, v in report.items() if k not in ("precision", "f1", "f1_macro")}
    report["recall"] = report["per_class"][name]["recall"]
    report["average"] = f"one class: {name}"
    report["note"] = (f"every review is {name}: accuracy is {name}'s recall; "
                      "precision and F1 need reviews of each class")
    return report


def _untested(run: Run) -> bool:
    """A run with a saved model and no test in its metrics (its test was stopped)."""
    try:
        metrics = run.metrics
    except Exception:  # noqa: BLE001 - a damaged metrics.json is reported elsewhere; never record over it
        return False
    return run.info.has_model and bool(metrics) and metrics.get("test") is None


def _calibrate(run: Run, validation, batch_size: int) -> None:
    """Fit the model's temperature on the validation split, as training would have, and save it with the model."""
    from core.files import write_json_atomic
    from core.predict import Predictor
    from core.training.calibration import choose_temperature

    raw = Predictor(run.path, calibrated=False)
    predictions = raw.predict(validation["text"].tolist(), batch_size=batch_size)
    # Log-probabilities are the logits up to a constant per review, which a softmax ignores.
    logits = np.log(np.clip([[p.probabilities[n] for n in raw.label_names] for p in predictions], 1e-300, None))
    labels = np.asarray(validation["label"])
    choice = choose_temperature(logits.astype(np.float64), labels)
    metrics = run.metrics
    metrics["calibration"] = {**(metrics.get("calibration") or {}), "temperature": choice.temperature,
                              "applied": choice.temperature is not None, "reason": choice.reason,
                              "fitted_on": "validation"}
    write_json_atomic(run.path / layout.METRICS, metrics)
    if choice.temperature is None:
        return
    step = (metrics.get("kept") or {}).get("step")
    write_json_atomic(run.model_dir / layout.CALIBRATION, {"temperature": choice.temperature,
                                                           "fitted_on": "validation", "step": step})


def _record_test(run: Run, report: dict[str, Any], texts: list[str], y_true: list[int], probabilities,
                 names: list[str]) -> None:
    """Write the test into the run: metrics.json (with the reliability bins), test_predictions.jsonl, the card,
    and a status note that no longer says the test is missing."""
    from core.files import write_json_atomic
    from core.runs.card import write_model_card
    from core.runs.store import write_status
    from core.training.calibration import reliability
    from core.training.scoring import write_predictions

    write_predictions(run.path / layout.TEST_PREDICTIONS, texts, y_true, probabilities, names)
    metrics = run.metrics
    metrics["test"] = {k: v for k, v in report.items() if k not in ("temperature", "dataset")}
    metrics["reliability"] = [b.to_dict() for b in reliability(probabilities, np.asarray(y_true))]
    temperature = report.get("temperature")
    if temperature is not None:
        from core.training.calibration import scaled_softmax

        # The plain softmax, back from the calibrated one: log p is logits / T up to a constant per review.
        raw = scaled_softmax(np.log(np.clip(probabilities, 1e-300, None)), 1 / temperature)
        metrics["calibration"] = {**(metrics.get("calibration") or {}), "temperature": temperature,
                                  "fitted_on": "validation", "ece_after": report.get("ece"),
                                  "ece_after_ci": [report.get("ece_ci_low"), report.get("ece_ci_high")],
                                  "ece_before": expected_calibration_error(raw, np.asarray(y_true)),
                                  "ece_before_ci": list(ece_interval(raw, np.asarray(y_true)))}
    elif metrics.get("calibration") is not None:  # calibrate = true, no temperature applied: the plain ECE
        metrics["calibration"] = {**metrics["calibration"], "ece_before": report.get("ece"), "ece_after": None,
                                  "ece_before_ci": [report.get("ece_ci_low"), report.get("ece_ci_high")]}
    write_json_atomic(run.path / layout.METRICS, metrics)
    write_model_card(run.path)
    status = run.status
    write_status(run.path, status.get("status", "stopped"), None, step=status.get("step"))


def _saved_test_split(run: Run, names: list[str]):
    """The run's test reviews and labels as it saved them (test_predictions.jsonl), or None without them.

    Scoring these needs neither the data file nor the Hub, and is the split the run was tested on.
    """
    import pandas as pd

    rows = run.test_predictions()
    if not rows or any(r.get("label") not in names or not isinstance(r.get("text"), str) for r in rows):
        return None
    return pd.DataFrame({"text": [r["text"] for r in rows], "label": [names.index(r["label"]) for r in rows]})
