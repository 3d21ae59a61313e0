import numpy as np
import pytest

from core.training.metrics import evaluate_predictions, softmax, wilson_interval


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(600, 750)
    assert low == pytest.approx(0.7699, abs=1e-3) and high == pytest.approx(0.8267, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == 1.0


def test_binary_report_scores_the_positive_class():
    report = evaluate_predictions([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["negative", "positive"])
    assert report["accuracy"] == pytest.approx(0.6)
    assert report["precision"] == pytest.approx(2 / 3) and report["recall"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"] == [[1, 1], [1, 2]]
    assert report["per_class"]["negative"]["support"] == 2


def test_multiclass_report_is_macro_averaged():
    report = evaluate_predictions([0, 1, 2, 2], [0, 1, 2, 1], ["a", "b", "c"])
    assert report["average"] == "macro"
    assert report["recall"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_softmax_rows_sum_to_one():
    probs = softmax(np.array([[1000.0, 1001.0], [0.0, 0.0]]))
    assert np.allclose(probs.sum(axis=1), 1) and probs[1, 0] == pytest.approx(0.5)
