import time

import pandas as pd
import pytest

from core.config import TrainConfig
from core.data import sources as data_mod
from core.data.clean import join_text, prepare
from core.data.stats import data_stats
from core.errors import DatasetError
from tests.tiny import reviews_frame


def _write(frame: pd.DataFrame, path):
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_local_format_loads(tmp_path, suffix):
    path = _write(reviews_frame(100), tmp_path / f"r{suffix}")
    prepared = prepare(TrainConfig(dataset=str(path)))
    assert sum(len(s) for s in prepared.splits.values()) == 100
    assert prepared.label_names == ["negative", "positive"]


def test_split_sizes_stratified_and_deterministic(tmp_path):
    path = _write(reviews_frame(400), tmp_path / "r.csv")
    config = TrainConfig(dataset=str(path), max_samples=200, seed=7)
    a, b = prepare(config), prepare(config)
    assert {k: len(v) for k, v in a.splits.items()} == {"train": 140, "validation": 30, "test": 30}
    for name in a.splits:
        assert a.splits[name]["text"].tolist() == b.splits[name]["text"].tolist()
        counts = a.splits[name]["label"].value_counts()
        assert abs(counts[0] - counts[1]) <= 1  # balanced input stays balanced in every split
    all_texts = [t for s in a.splits.values() for t in s["text"]]
    assert len(all_texts) == len(set(all_texts))  # no row in two splits
    other = prepare(config.replace(seed=8))
    assert other.splits["test"]["text"].tolist() != a.splits["test"]["text"].tolist()


def test_title_and_content_are_detected_and_joined(tmp_path):
    frame = reviews_frame(60, text_col="content", label_col="polarity")
    frame.insert(0, "title", ["Great buy" if i % 2 else "Meh" for i in range(60)])
    prepared = prepare(TrainConfig(dataset=str(_write(frame, tmp_path / "a.csv"))))
    assert prepared.text_columns == ["title", "content"] and prepared.label_column == "polarity"
    assert any("auto-detected: title + content" in n for n in prepared.notes)
    assert all(t.startswith(("Great buy. ", "Meh. ")) for s in prepared.splits.values() for t in s["text"])


@pytest.mark.parametrize("column", ["review", "sentence", "body"])
def test_single_text_column_detection(tmp_path, column):
    frame = reviews_frame(60, text_col=column, label_col="sentiment")
    prepared = prepare(TrainConfig(dataset=str(_write(frame, tmp_path / "a.csv"))))
    assert prepared.text_columns == [column] and prepared.label_column == "sentiment"


def test_explicit_columns_and_unknown_column_message(tmp_path):
    frame = reviews_frame(60, text_col="words", label_col="y")
    path = _write(frame, tmp_path / "a.csv")
    prepared = prepare(TrainConfig(dataset=str(path), text_columns=("words",), label_column="y"))
    assert prepared.text_columns == ["words"]
    with pytest.raises(DatasetError, match=r"^no text column found; columns are: words, y"):
        prepare(TrainConfig(dataset=str(path)))
    with pytest.raises(DatasetError, match=r"^label column 'stars' not found; columns are: words, y$"):
        prepare(TrainConfig(dataset=str(path), text_columns=("words",), label_column="stars"))


def test_cleaning_counts_every_drop(tmp_path):
    frame = reviews_frame(100, label_col="stars", labels=(1, 5))
    extra = pd.DataFrame({
        "text": ["", "   ", "no label here", frame["text"][0], "a   middling   one", "another fine one"],
        "stars": [1, 5, None, 5, 3, 4],
    })
    path = _write(pd.concat([frame, extra]), tmp_path / "s.csv")
    prepared = prepare(TrainConfig(dataset=str(path)))
    c = prepared.cleaning
    assert (c.rows_read, c.empty_text, c.missing_label, c.neutral, c.duplicates) == (106, 2, 1, 1, 1)
    assert c.rows_clean == 101
    texts = [t for s in prepared.splits.values() for t in s["text"]]
    assert "another fine one" in texts and all("  " not in t for t in texts)


def test_max_samples_zero_uses_all_rows(tmp_path):
    path = _write(reviews_frame(120), tmp_path / "a.csv")
    assert sum(map(len, prepare(TrainConfig(dataset=str(path), max_samples=0)).splits.values())) == 120
    assert sum(map(len, prepare(TrainConfig(dataset=str(path), max_samples=60)).splits.values())) == 60


def test_bad_files_give_clear_messages(tmp_path):
    with pytest.raises(DatasetError, match="^dataset file not found: .*missing.csv$"):
        prepare(TrainConfig(dataset=str(tmp_path / "missing.csv")))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        prepare(TrainConfig(dataset=str(empty)))
    one = _write(reviews_frame(40, labels=("positive", "positive")), tmp_path / "one.csv")
    with pytest.raises(DatasetError, match="only one label"):
        prepare(TrainConfig(dataset=str(one)))
    tiny = _write(reviews_frame(4), tmp_path / "tiny.csv")
    with pytest.raises(DatasetError, match="too few rows"):
        prepare(TrainConfig(dataset=str(tiny)))


def test_offline_hub_fails_fast_with_advice(monkeypatch):
    monkeypatch.setattr(data_mod, "hub_reachable", lambda timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(DatasetError) as err:
        prepare(TrainConfig(dataset="amazon_polarity"))
    assert time.perf_counter() - start < 5
    assert "'amazon_polarity'" in str(err.value) and "--dataset reviews.csv" in str(err.value)


def test_join_text_normalises_and_punctuates():
    assert join_text(["Loved it", "  so   much\n fun "]) == "Loved it. so much fun"
    assert join_text(["Wow!", "great"]) == "Wow! great"
    assert join_text([None, float("nan"), "only"]) == "only"


def test_stats_report_lengths_and_truncation(tmp_path, tiny_model):
    from core.training.model import load_tokenizer

    path = _write(reviews_frame(100), tmp_path / "a.csv")
    prepared = prepare(TrainConfig(dataset=str(path)))
    tokenizer = load_tokenizer(str(tiny_model))
    stats = data_stats(prepared, tokenizer, max_length=8)
    assert stats.rows == {"train": 70, "validation": 15, "test": 15}
    assert stats.balance["test"] == {"negative": 8, "positive": 7} or stats.balance["test"] == {"negative": 7, "positive": 8}
    assert sum(stats.tokens.counts) == 100 and stats.tokens.max > 8
    assert 0 < stats.truncated_share < 1
    assert data_stats(prepared, tokenizer, max_length=1000).truncated_share == 0


def test_stats_sample_large_datasets(tmp_path, tiny_model):
    from core.training.model import load_tokenizer

    path = _write(reviews_frame(400), tmp_path / "a.csv")
    prepared = prepare(TrainConfig(dataset=str(path), max_samples=0))
    stats = data_stats(prepared, load_tokenizer(str(tiny_model)), sample=100)
    assert stats.sampled == 100 and sum(stats.tokens.counts) == 100 and len(stats.token_lengths) == 100
    assert stats.rows == {"train": 280, "validation": 60, "test": 60}  # counts still cover every row
    assert data_stats(prepared, None).sampled is None


def test_behind_a_proxy_the_libraries_reach_the_hub(monkeypatch):
    """A direct connection fails behind an HTTPS proxy where the libraries would work: no quick check then."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("direct connections are blocked here")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in data_mod.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert data_mod.hub_reachable() is False
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert data_mod.hub_reachable() is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert data_mod.hub_reachable() is False
