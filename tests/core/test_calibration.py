"""Calibration: ECE, the reliability table, and a temperature fitted to over-confident logits."""

import numpy as np

from core.training.calibration import expected_calibration_error, fit_temperature, reliability, scaled_softmax


def _synthetic(n: int, scale: float, seed: int = 0):
    """Logits whose softmax is calibrated, then multiplied by `scale` (over-confident when > 1)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, 3))
    probs = scaled_softmax(logits)
    labels = np.array([rng.choice(3, p=p) for p in probs])  # drawn from the calibrated probabilities
    return logits * scale, labels


def test_calibrated_probabilities_have_a_small_ece_and_over_confident_ones_a_large_one():
    logits, labels = _synthetic(20000, 1.0)
    assert expected_calibration_error(scaled_softmax(logits), labels) < 0.02
    sharp, labels = _synthetic(20000, 3.0)
    assert expected_calibration_error(scaled_softmax(sharp), labels) > 0.1


def test_the_fitted_temperature_undoes_over_confidence_without_changing_a_label():
    logits, labels = _synthetic(5000, 3.0, seed=1)
    temperature = fit_temperature(logits, labels)
    assert abs(temperature - 3.0) < 0.3
    before, after = scaled_softmax(logits), scaled_softmax(logits, temperature)
    assert expected_calibration_error(after, labels) < expected_calibration_error(before, labels) / 3
    assert (before.argmax(1) == after.argmax(1)).all()


def test_the_reliability_table_counts_every_review_once_in_its_bin():
    probs = np.array([[0.97, 0.03], [0.56, 0.44], [0.54, 0.46], [0.0, 1.0]])  # 15 bins: 0.533-0.6 holds two
    labels = np.array([0, 1, 0, 1])
    table = reliability(probs, labels)
    assert sum(b.count for b in table) == 4
    top = table[-1]
    assert top.high == 1.0 and top.count == 2 and top.accuracy == 1.0  # 0.97 and a confidence of exactly 1.0
    low = table[0]
    assert low.count == 2 and low.accuracy == 0.5 and abs(low.confidence - 0.55) < 1e-9


def test_a_temperature_is_applied_only_where_held_out_validation_reviews_say_it_helps():
    from core.training.calibration import MIN_REVIEWS, choose_temperature

    sharp, labels = _synthetic(600, 3.0, seed=2)  # over-confident: a temperature helps
    applied = choose_temperature(sharp, labels)
    assert applied.temperature is not None and abs(applied.temperature - 3.0) < 0.6
    assert applied.reason.startswith("applied: held-out log-loss")
    calibrated, labels = _synthetic(600, 1.0, seed=3)  # already calibrated: nothing to gain
    kept = choose_temperature(calibrated, labels)
    assert kept.temperature is None and "did not help on held-out reviews" in kept.reason
    few, labels = _synthetic(MIN_REVIEWS - 1, 3.0, seed=4)  # too few to trust, however over-confident
    small = choose_temperature(few, labels)
    assert small.temperature is None and f"has {MIN_REVIEWS - 1} reviews" in small.reason


def test_the_ece_comes_with_a_bootstrap_interval_that_narrows_with_more_reviews():
    from core.training.calibration import ece_interval

    widths = []
    for n in (100, 5000):
        logits, labels = _synthetic(n, 2.0, seed=5)
        probs = scaled_softmax(logits)
        low, high = ece_interval(probs, labels)
        assert low <= expected_calibration_error(probs, labels) <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3


def test_a_small_validation_split_keeps_the_plain_softmax_and_says_why(trained_run, capsys):
    import json

    from core.cli import main
    from core.predict import Predictor

    run_dir = trained_run[0].run_dir  # 45 validation reviews
    metrics = json.loads((run_dir / "metrics.json").read_text())
    calibration = metrics["calibration"]
    assert calibration["temperature"] is None and calibration["applied"] is False
    assert "fewer than the 100" in calibration["reason"] and calibration["ece_after"] is None
    assert not (run_dir / "model" / "calibration.json").exists() and Predictor(run_dir).temperature is None
    test = metrics["test"]
    assert calibration["ece_before"] == test["ece"] and test["ece_ci_low"] <= test["ece"] <= test["ece_ci_high"]
    assert sum(b["count"] for b in metrics["reliability"]) == test["n"]
    assert main(["evaluate", str(run_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert abs(report["ece"] - test["ece"]) < 1e-4 and report["temperature"] is None


def _with_temperature(run_dir, tmp_path, temperature: float = 2.0):
    import json
    import shutil

    copy = shutil.copytree(run_dir, tmp_path / "calibrated")
    (copy / "model" / "calibration.json").write_text(json.dumps({"temperature": temperature,
                                                                 "fitted_on": "validation"}))
    return copy


def test_predict_reports_the_calibrated_confidence_of_a_run_with_a_temperature(trained_run, tmp_path):
    from core.predict import Predictor

    run_dir = _with_temperature(trained_run[0].run_dir, tmp_path)
    texts = ["a fine film", "dull and slow", "great fun"]
    calibrated = Predictor(run_dir).predict(texts)
    raw = Predictor(run_dir, calibrated=False).predict(texts)
    assert [p.label for p in raw] == [p.label for p in calibrated]  # a temperature never changes a label
    for a, b in zip(raw, calibrated):
        logit_gap = np.log(a.confidence / (1 - a.confidence))
        assert abs(np.log(b.confidence / (1 - b.confidence)) - logit_gap / 2.0) < 1e-3


def test_calibration_can_be_turned_off(tiny_config, tmp_path):
    import json

    from core.predict import Predictor
    from core.training.train import train

    run_dir = train(tiny_config.replace(epochs=1, calibrate=False, baseline=False), tmp_path).run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "calibration" not in metrics and "ece" in metrics["test"]  # the raw confidences' ECE
    assert not (run_dir / "model" / "calibration.json").exists() and Predictor(run_dir).temperature is None


def test_a_metrics_file_with_damaged_calibration_figures_is_named_not_crashed_on():
    from core.runs.store import shape_problem

    assert shape_problem("metrics.json", {"reliability": [{"count": "x"}]}) == (
        "metrics.json: 'reliability' is not a list of bins of numbers")
    assert "'calibration' holds" in shape_problem("metrics.json", {"calibration": {"temperature": "hot"}})
    assert shape_problem("metrics.json", {"calibration": {"temperature": 1.3, "fitted_on": "validation"},
                                          "reliability": [{"count": 3, "accuracy": 0.5}]}) is None


def test_predict_raw_confidence_skips_the_temperature(trained_run, capsys, tmp_path):
    import json

    from core.cli import main
    from core.predict import Predictor

    run_dir = _with_temperature(trained_run[0].run_dir, tmp_path)
    text = "a fine film"
    assert main(["predict", str(run_dir), text, "--json", "--raw-confidence"]) == 0
    raw = json.loads(capsys.readouterr().out)["confidence"]
    assert abs(raw - Predictor(run_dir, calibrated=False).predict(text)[0].confidence) < 1e-9
    assert main(["predict", str(run_dir), text, "--json"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["confidence"] - raw) > 1e-4
