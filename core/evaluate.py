"""Score a saved run's model on its own test split or on another dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DatasetError
from core.runs.store import Run
from core.training.calibration import expected_calibration_error
from core.training.metrics import evaluate_predictions


def evaluate_run(run: Run, dataset: str | None = None, batch_size: int = 64,
                 on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """A metrics report for `run`'s model: on its test split, or on every row of `dataset` (its `n` says how many)."""
    from core.data.clean import load_clean, prepare
    from core.predict import Predictor

    config = run.train_config()
    predictor = Predictor(run.path)
    if dataset is None:
        names = list(run.config_record.get("label_names") or predictor.label_names)
        rows = _saved_test_split(run, names)
        if rows is None:  # tested runs keep their test reviews; others are split again from the data
            rows = prepare(config).splits["test"]
    else:
        loaded = load_clean(config.replace(dataset=dataset, dataset_config="", text_columns=(), label_column=""))
        names = loaded.mapping.names
        rows = loaded.rows
    unknown = [n for n in names if n not in predictor.label_names]
    if unknown:
        raise DatasetError(
            f"labels {', '.join(unknown)} of {dataset or config.dataset} are not ones the model knows "
            f"({', '.join(predictor.label_names)})"
        )
    predictions = predictor.predict(rows["text"].tolist(), batch_size=batch_size, on_progress=on_progress)
    y_true = [predictor.label_names.index(names[i]) for i in rows["label"]]
    y_pred = [predictor.label_names.index(p.label) for p in predictions]
    report = evaluate_predictions(y_true, y_pred, predictor.label_names)
    probabilities = [[p.probabilities[name] for name in predictor.label_names] for p in predictions]
    if probabilities:
        report["ece"] = expected_calibration_error(np.asarray(probabilities), np.asarray(y_true))
    report["temperature"] = predictor.temperature
    report["dataset"] = str(Path(dataset)) if dataset else config.dataset
    return report


def _saved_test_split(run: Run, names: list[str]):
    """The run's test reviews and labels as it saved them (test_predictions.jsonl), or None without them.

    Scoring these needs neither the data file nor the Hub, and is the split the run was tested on.
    """
    import pandas as pd

    rows = run.test_predictions()
    if not rows or any(r.get("label") not in names or not isinstance(r.get("text"), str) for r in rows):
        return None
    return pd.DataFrame({"text": [r["text"] for r in rows], "label": [names.index(r["label"]) for r in rows]})
