from core.predict import Prediction
from core.review_files import summarize_batch


def _pred(label: str) -> Prediction:
    return Prediction("t", label, 0.9, {label: 0.9})


def test_batch_summary_counts_every_label_in_order():
    preds = [_pred("positive"), _pred("negative"), _pred("positive")]
    summary = summarize_batch(preds, blanks=1, seconds=0.5, label_names=["negative", "positive", "neutral"])
    assert summary.counts == {"negative": 1, "positive": 2, "neutral": 0}
    assert list(summary.counts) == ["negative", "positive", "neutral"]
    assert summary.reviews == 3 and summary.per_second == 6.0
    assert summary.describe() == (
        "3 reviews: negative 1 (33.3%), positive 2 (66.7%), neutral 0 (0.0%) · 1 blank line skipped · 6 reviews/s"
    )


def test_batch_summary_without_names_or_time():
    summary = summarize_batch([_pred("good")])
    assert summary.counts == {"good": 1} and summary.per_second == 0.0
    assert summary.describe() == "1 review: good 1 (100.0%)"
    assert summarize_batch([]).describe() == "0 reviews"


def test_a_title_and_content_file_is_read_as_training_read_it(tmp_path):
    """The default dataset's shape: predictions see title + content joined, as the model was trained on."""
    from core.data.clean import join_text
    from core.review_files import read_review_file

    path = tmp_path / "amazon.csv"
    path.write_text("label,title,content\npositive,Great buy,Works well every day\nnegative,Broke,\"Stopped, sadly\"\n")
    reviews = read_review_file(path)
    assert reviews.texts == [join_text(["Great buy", "Works well every day"]), join_text(["Broke", "Stopped, sadly"])]
    assert reviews.labels == ["positive", "negative"]
    named = tmp_path / "named.csv"
    named.write_text("summary,body,label\nOk,fine enough,positive\n")
    assert read_review_file(named, ["summary", "body"]).texts == ["Ok. fine enough"]  # the run's --text-columns


def test_predict_reads_a_file_with_the_columns_its_run_was_trained_on(tmp_path):
    import json

    from core.review_files import trained_text_columns

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"text_columns": ["summary", "body"]}}))
    assert trained_text_columns(run / "model") == ["summary", "body"] == trained_text_columns(run)
    assert trained_text_columns(tmp_path / "elsewhere") == []
