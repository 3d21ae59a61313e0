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
