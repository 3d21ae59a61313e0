import json

import pytest

from core.errors import ModelError, PredictError
from core.predict import Predictor
from core.review_files import read_reviews, write_predictions_csv


@pytest.fixture(scope="module")
def predictor(trained_run):
    return Predictor(trained_run[0].run_dir)


def test_predictions_keep_order_and_sum_to_one(predictor):
    texts = ["awful terrible boring dull", "great wonderful excellent superb", "the plot"]
    preds = predictor.predict(texts)
    assert [p.text for p in preds] == texts
    assert preds[0].label == "negative" and preds[1].label == "positive"
    for p in preds:
        assert sum(p.probabilities.values()) == pytest.approx(1.0)
        assert p.confidence == max(p.probabilities.values())


def test_empty_review_is_a_clear_error(predictor):
    with pytest.raises(PredictError, match="the review is empty"):
        predictor.predict("   ")
    with pytest.raises(PredictError, match=r"\(text 2\)"):
        predictor.predict(["fine", ""])


def test_model_folder_and_bad_paths(trained_run, tmp_path):
    model_dir = trained_run[0].run_dir / "model"
    assert Predictor(model_dir).label_names == ["negative", "positive"]
    with pytest.raises(ModelError, match="no run or model folder"):
        Predictor(tmp_path / "nothing")
    no_tok = tmp_path / "bare"
    no_tok.mkdir()
    (no_tok / "config.json").write_text((model_dir / "config.json").read_text())
    with pytest.raises(ModelError, match="no tokenizer"):
        Predictor(no_tok)


def test_review_files_and_csv_output(predictor, tmp_path):
    txt = tmp_path / "r.txt"
    txt.write_text("great film\n\n  \nawful film\n")
    texts, blanks = read_reviews(txt)
    assert texts == ["great film", "awful film"] and blanks == 2
    csv_in = tmp_path / "r.csv"
    csv_in.write_text("id,review\n1,lovely\n2,dreadful\n")
    assert read_reviews(csv_in)[0] == ["lovely", "dreadful"]
    out = write_predictions_csv(predictor.predict(texts), tmp_path / "out.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "text,label,confidence,p_negative,p_positive" and len(lines) == 3
    with pytest.raises(PredictError, match="holds no reviews"):
        (tmp_path / "blank.txt").write_text("\n\n")
        read_reviews(tmp_path / "blank.txt")


def test_undecodable_command_line_bytes_become_one_replacement_each(predictor):
    text = b"bad \xff\xfe bytes".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
    prediction = predictor.predict(text)[0]
    assert prediction.text == "bad \ufffd\ufffd bytes"
    assert predictor.predict("broken \ud800 json")[0].text == "broken \ufffd\ufffd\ufffd json"


def test_cleaning_lines_mention_neutral_rows_only_when_there_are_some():
    from core.data.clean import CleaningReport

    plain = CleaningReport(10, 0, 0, 0, 0, 10, 10).lines()
    stars = CleaningReport(10, 0, 0, 2, 0, 8, 8).lines()
    assert not any("neutral" in line for line in plain) and "2 dropped neutral (3 stars)" in stars


def test_a_labelled_file_is_scored_and_keeps_its_labels(trained_run, tmp_path, capsys):
    import csv

    from core.cli import main
    from core.review_files import read_review_file, true_labels

    path = tmp_path / "labelled.csv"
    path.write_text("review,sentiment\ngreat wonderful film,pos\nawful dull plot,neg\nexcellent superb,pos\n")
    reviews = read_review_file(path)
    assert reviews.labels == ["pos", "neg", "pos"]
    assert true_labels(reviews.labels, ["negative", "positive"]) == ["positive", "negative", "positive"]
    assert true_labels(["1 star", "5 stars"], ["negative", "positive"]) == ["negative", "positive"]
    assert true_labels(["spam", "ham"], ["negative", "positive"]) is None
    out = tmp_path / "out.csv"
    assert main(["predict", str(trained_run[0].run_dir), "--file", str(path), "--save", str(out)]) == 0
    said = capsys.readouterr().out
    assert "against the file's labels: accuracy" in said and "true \\ pred" in said
    rows = list(csv.DictReader(out.open()))
    assert [r["true_label"] for r in rows] == ["positive", "negative", "positive"]
    assert main(["predict", str(trained_run[0].run_dir), "--file", str(path), "--json"]) == 0
    assert all("true_label" in json.loads(line) for line in capsys.readouterr().out.splitlines())


def test_the_twin_predicts_alike_on_its_own_weights_and_lock(predictor):
    twin = predictor.twin()
    assert twin is predictor.twin()  # made once
    assert twin.model is not predictor.model and twin.tokenizer is not predictor.tokenizer
    assert twin.lock is not predictor.lock
    with twin.lock:  # held by a long job on the twin: predictions here do not wait for it
        text = "awful terrible boring dull"
        assert predictor.predict(text)[0].probabilities == pytest.approx(twin.predict(text)[0].probabilities)
