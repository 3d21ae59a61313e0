"""Predict and evaluate score a run the way it was trained: the same max_length everywhere."""

import json
import random

import pytest

from core.cli import main
from tests.tiny import NEGATIVE, NEUTRAL, POSITIVE, train_on_rows


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, tiny_model):
    """A run trained at max_length 16 on reviews about 60 tokens long whose endings contradict their labels."""
    rng = random.Random(3)
    rows = []
    for i in range(240):
        positive = i % 2 == 1
        tail = [rng.choice(NEUTRAL) for _ in range(40)] + [rng.choice(NEGATIVE if positive else POSITIVE) for _ in range(6)]
        head = " ".join(rng.choice(POSITIVE if positive else NEGATIVE) for _ in range(3))
        rows.append({"text": f"{head} {' '.join(tail)} {i}", "label": int(positive)})
    return train_on_rows(rows, tmp_path_factory.mktemp("long"), tiny_model, max_length=16)


def test_the_saved_model_remembers_its_max_length(short_run):
    from transformers import AutoTokenizer

    from core.predict import Predictor

    assert AutoTokenizer.from_pretrained(str(short_run / "model")).model_max_length == 16
    assert Predictor(short_run).max_length == 16
    assert Predictor(short_run / "model").max_length == 16


def test_evaluate_reproduces_the_test_score_exactly(short_run, capsys):
    assert main(["evaluate", str(short_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    saved = json.loads((short_run / "metrics.json").read_text())["test"]
    assert report["n"] == saved["n"]
    assert report["accuracy"] == saved["accuracy"]
    assert report["confusion_matrix"] == saved["confusion_matrix"]


def test_predict_gives_the_saved_test_labels(short_run, tmp_path, capsys):
    rows = [json.loads(line) for line in (short_run / "test_predictions.jsonl").read_text().splitlines()]
    reviews = tmp_path / "test.txt"
    reviews.write_text("\n".join(r["text"] for r in rows) + "\n")
    assert main(["predict", str(short_run), "--file", str(reviews), "--json"]) == 0
    predicted = [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()]
    assert predicted == [r["predicted"] for r in rows]


def test_a_full_length_reading_would_disagree(short_run):
    """The fixture is a real test of skew: at the model's full length the same texts score differently."""
    from core.predict import Predictor

    rows = [json.loads(line) for line in (short_run / "test_predictions.jsonl").read_text().splitlines()]
    predictor = Predictor(short_run)
    predictor.max_length = 512
    full = [p.label for p in predictor.predict([r["text"] for r in rows])]
    assert full != [r["predicted"] for r in rows]
    saved = json.loads((short_run / "metrics.json").read_text())["test"]
    assert saved["accuracy"] > 0.9  # trained at 16 tokens, the model reads the opening words well


def test_evaluate_needs_neither_the_data_file_nor_the_hub(short_run, tmp_path, capsys):
    """A tested run keeps its test reviews: `evaluate` scores those, even after the data file is gone."""
    import shutil

    copy = shutil.copytree(short_run, tmp_path / "moved")
    record = json.loads((copy / "config.json").read_text())
    record["config"]["dataset"] = str(tmp_path / "deleted.csv")
    (copy / "config.json").write_text(json.dumps(record))
    assert main(["evaluate", str(copy), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == json.loads((short_run / "metrics.json").read_text())["test"]["accuracy"]
