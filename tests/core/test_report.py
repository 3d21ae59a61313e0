import json

from core.config import TrainConfig
from core.format import short_name
from core.runs.progress import baseline_gain
from core.runs.report import (
    best_index,
    config_diff,
    format_accuracy,
    load_report,
    misclassified,
    shown_value,
)
from tests.tui.fake_runs import write_fake_run


def test_report_of_a_finished_run_reads_metrics_events_and_mistakes(tmp_path):
    run = write_fake_run(tmp_path, "20260101-120000-tiny-reviews", quality=0.05)
    report = load_report(run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert report.info.status == "finished" and report.name == run.name
    assert report.test["confusion_matrix"] == [[26, 4], [5, 25]] and report.test_n == 60
    assert [row["epoch"] for row in report.validation] == [1.0, 2.0, 3.0] and report.best == 2
    assert report.gain["accuracy"] == (metrics["test"]["accuracy"] - metrics["baseline"]["accuracy"]) * 100
    assert report.label_names == ["negative", "positive"]
    assert report.train_loss[0][0] == 2 and len(report.validation_loss) == 3
    assert report.curve("f1") == [(1.0, 0.75), (2.0, 0.85), (3.0, 0.95)]
    assert all(r["predicted"] != r["label"] for r in report.misclassified) and len(report.misclassified) == 9
    confidences = [r["confidence"] for r in report.misclassified]
    assert confidences == sorted(confidences, reverse=True)
    assert report.config["epochs"] == 3 and report.notes == []


def test_report_of_a_running_run_comes_from_its_events(tmp_path):
    run = write_fake_run(tmp_path, "r", status="running")
    report = load_report(run)
    assert report.info.status == "running" and report.test is None and report.misclassified == []
    assert len(report.validation) == 3 and report.validation[0]["step"] == 20
    assert report.baseline["accuracy"] == 0.5 and report.gain == {}


def test_damaged_run_gives_a_report_with_a_note(tmp_path):
    run = write_fake_run(tmp_path, "r")
    (run / "status.json").write_text("{not json")
    report = load_report(run)
    assert report.info.status == "unreadable" and "not valid JSON" in report.notes[0]
    run2 = write_fake_run(tmp_path, "r2")
    (run2 / "metrics.json").write_text("{")
    report2 = load_report(run2)
    assert report2.info.status == "finished" and report2.notes and len(report2.validation) == 3


def test_small_helpers():
    assert short_name("/x/y/distilbert-sst2/model") == "distilbert-sst2"
    assert short_name("distilbert/distilbert-base-uncased") == "distilbert-base-uncased"
    assert short_name("data/reviews.csv") == "reviews.csv"
    assert best_index([{"f1": 0.5}, {"f1": 0.7}, {"f1": 0.7}]) == 1 and best_index([]) is None
    assert baseline_gain({"accuracy": 0.5, "f1": 0.6}, {"accuracy": 0.85}) == {"accuracy": 35.0}
    assert baseline_gain(None, {"accuracy": 0.85}) == {}
    rows = [{"label": "a", "predicted": "b", "confidence": 0.6}, {"label": "a", "predicted": "a", "confidence": 0.99},
            {"label": "b", "predicted": "a", "confidence": 0.9}]
    assert [r["confidence"] for r in misclassified(rows)] == [0.9, 0.6]
    a = TrainConfig(model="tiny", dataset="d.csv").to_dict()
    b = TrainConfig(model="tiny", dataset="d.csv", learning_rate=3e-5, text_columns=("t",)).to_dict()
    assert config_diff(a, b) == [("text_columns", [], ["t"]), ("learning_rate", 2e-5, 3e-5)]
    assert config_diff(a, a) == []
    assert shown_value([]) == "(auto)" and shown_value(["a", "b"]) == "a, b" and shown_value(3e-5) == "3e-05"
    assert format_accuracy({"accuracy": 0.85, "accuracy_ci_low": 0.739, "accuracy_ci_high": 0.919}) == \
        "accuracy 85.0% (95% CI 73.9–91.9%)"
    assert format_accuracy({"accuracy": 0.5}) == "accuracy 50.0%"


def test_report_module_stays_ui_free():
    import subprocess
    import sys

    code = "import sys, core.runs.report\nprint(','.join(m for m in ('textual', 'rich', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_figures_of_the_wrong_type_never_raise(tmp_path):
    run = write_fake_run(tmp_path, "r")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["baseline"] = {"accuracy": "fifty percent"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "test_predictions.jsonl").write_text(
        '{"text": "a", "label": "positive", "predicted": "negative", "confidence": "high"}\n'
        '{"text": "b", "label": "positive", "predicted": "negative", "confidence": 0.9}\n')
    report = load_report(run)
    assert report.baseline is None or report.baseline.get("accuracy") != "fifty percent"
    assert any("'accuracy' is not a number" in n for n in report.notes)
    assert [r["text"] for r in report.misclassified] == ["b"]
    assert report.resumable is False  # no checkpoint was written


def test_an_estimate_comes_from_the_newest_earlier_run_of_the_model_on_the_device(tmp_path):
    from core.runs.store import list_runs, train_rate

    write_fake_run(tmp_path, "r")
    info = list_runs(tmp_path)[0]
    rate = train_rate(tmp_path, info.model, info.device)
    assert rate is not None and rate.run_name == "r"
    assert rate.seconds(200, 3) == 200 * 3 / rate.samples_per_second
    assert train_rate(tmp_path, info.model, "another device") is None
