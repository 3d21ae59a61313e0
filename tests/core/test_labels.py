import pandas as pd
import pytest

from core.data.labels import map_labels
from core.errors import DatasetError


@pytest.mark.parametrize(
    "raw, expected_ids, names",
    [
        ([0, 1, 1, 0], [0, 1, 1, 0], ["negative", "positive"]),
        ([-1, 1, 1, -1], [0, 1, 1, 0], ["negative", "positive"]),
        ([True, False, True], [1, 0, 1], ["negative", "positive"]),
        (["positive", "Negative", "NEGATIVE", "positive"], [1, 0, 0, 1], ["negative", "positive"]),
        (["pos", "neg", "Pos"], [1, 0, 1], ["neg", "pos"]),
        ([1.0, 0.0], [1, 0], ["negative", "positive"]),
        (["1", "0", "1"], [1, 0, 1], ["negative", "positive"]),
    ],
)
def test_binary_formats(raw, expected_ids, names):
    ids, mapping = map_labels(pd.Series(raw), "label")
    assert ids.tolist() == expected_ids
    assert mapping.names == names and mapping.kind == "binary"


def test_star_ratings_drop_three():
    ids, mapping = map_labels(pd.Series([1, 2, 3, 4, 5, 3]), "stars")
    assert ids.tolist() == [0, 0, -1, 1, 1, -1]
    assert mapping.kind == "stars" and mapping.dropped_neutral == 2
    assert "2 rated 3 dropped" in mapping.description


def test_more_than_two_strings_is_multiclass():
    ids, mapping = map_labels(pd.Series(["positive", "neutral", "negative", "neutral"]), "y")
    assert mapping.kind == "multiclass"
    assert mapping.names == ["negative", "neutral", "positive"]
    assert ids.tolist() == [2, 1, 0, 1]


def test_class_label_names_are_kept():
    ids, mapping = map_labels(pd.Series([0, 1, 1]), "label", class_names=["neg", "pos"])
    assert ids.tolist() == [0, 1, 1] and mapping.names == ["neg", "pos"]


def test_one_class_is_a_clear_error():
    with pytest.raises(DatasetError, match=r"only one label \(positive\) in column 'label'"):
        map_labels(pd.Series(["positive", "Positive"]), "label")


def test_free_float_labels_are_rejected():
    with pytest.raises(DatasetError, match="non-integer numbers"):
        map_labels(pd.Series([0.1, 0.5, 0.7]), "score")


@pytest.mark.parametrize("raw", [
    ["1 stars", "2 stars", "3 stars", "4 stars", "5 stars", "4.0"],
    ["1 star", "2/5", "3 out of 5", "4 Stars", "5.0", "4"],
    ["★", "★★", "★★★☆☆", "★★★★", "★★★★★", "★★★★☆"],
])
def test_star_ratings_written_as_text_are_stars(raw):
    ids, mapping = map_labels(pd.Series(raw), "rating")
    assert ids.tolist() == [0, 0, -1, 1, 1, 1]
    assert mapping.kind == "stars" and mapping.names == ["negative", "positive"]
    assert "written as text" in mapping.description and "1 rated 3 dropped" in mapping.description
