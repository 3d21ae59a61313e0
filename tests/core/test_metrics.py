import json

import numpy as np
import pytest

from core.training.metrics import evaluate_predictions, softmax, wilson_interval


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(600, 750)
    assert low == pytest.approx(0.7699, abs=1e-3) and high == pytest.approx(0.8267, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == 1.0


def test_a_binary_report_gives_macro_figures_and_each_class_its_own():
    report = evaluate_predictions([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["negative", "positive"])
    assert report["accuracy"] == pytest.approx(0.6) and report["average"] == "macro"
    assert report["precision"] == pytest.approx((1 / 2 + 2 / 3) / 2) and report["recall"] == pytest.approx(
        (1 / 2 + 2 / 3) / 2)
    assert report["f1"] == report["f1_macro"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # one F1, as the selection
    assert report["per_class"]["positive"]["f1"] == pytest.approx(2 / 3)  # scikit-learn's binary default, per class
    assert report["confusion_matrix"] == [[1, 1], [1, 2]]
    assert report["per_class"]["negative"]["support"] == 2


def test_the_run_list_shows_the_macro_f1_of_runs_recorded_before_it_was_the_headline(tmp_path, trained_run):
    import shutil

    from core.runs.store import run_info

    old = shutil.copytree(trained_run[0].run_dir, tmp_path / "old")
    metrics = json.loads((old / "metrics.json").read_text())
    metrics["test"].update(f1=0.9, f1_macro=0.6, average="binary")
    (old / "metrics.json").write_text(json.dumps(metrics))
    assert run_info(old).test_f1 == 0.6


def test_multiclass_report_is_macro_averaged():
    report = evaluate_predictions([0, 1, 2, 2], [0, 1, 2, 1], ["a", "b", "c"])
    assert report["average"] == "macro"
    assert report["recall"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_softmax_rows_sum_to_one():
    probs = softmax(np.array([[1000.0, 1001.0], [0.0, 0.0]]))
    assert np.allclose(probs.sum(axis=1), 1) and probs[1, 0] == pytest.approx(0.5)


def test_the_best_evaluation_is_chosen_by_macro_f1_which_a_one_class_model_cannot_win(trained_run):
    from core.runs.report import best_index
    from core.runs.store import SELECTION_METRIC, _best_validation

    truth = [0] * 10 + [1] * 10
    one_class = evaluate_predictions(truth, [1] * 20, ["negative", "positive"])
    weak = evaluate_predictions(truth, [0] * 6 + [1] * 4 + [0] * 4 + [1] * 6, ["negative", "positive"])
    # the positive class's F1 prefers the model that learned nothing
    assert one_class["per_class"]["positive"]["f1"] > weak["per_class"]["positive"]["f1"]
    assert one_class["f1"] < weak["f1"]  # the headline F1 does not
    assert one_class["f1_macro"] == pytest.approx(1 / 3) and weak["f1_macro"] > one_class["f1_macro"]
    history = [dict(one_class, step=4), dict(weak, step=40)]  # a stop's evaluation, then a later epoch's
    assert best_index(history) == 1 and _best_validation({"validation": history})["step"] == 40
    assert _best_validation({"validation": [{"f1": 0.5, "step": 1}, {"f1": 0.7, "step": 2}]})["step"] == 2  # older
    # Training keeps the model the same figure picks: the Trainer was told to, and every evaluation records it.
    result, _ = trained_run
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert all(SELECTION_METRIC in row for row in metrics["validation"])
    kept = max(metrics["validation"], key=lambda row: row[SELECTION_METRIC])
    assert metrics["best_checkpoint"].endswith(f"checkpoint-{kept['step']}")
