"""Core helpers the screens use: form text for config values, truncation at a changed max_length."""

from __future__ import annotations

from core.config import FIELDS, TrainConfig, format_value, parse_value, preset
from core.data.clean import prepare
from core.data.stats import data_stats
from tests.tiny import reviews_frame


def test_format_value_round_trips_every_field():
    for config in (TrainConfig(), preset("thorough"), TrainConfig(text_columns=("title", "content"), baseline=False)):
        for name in FIELDS:
            value, error = parse_value(name, format_value(name, getattr(config, name)))
            assert error is None and value == getattr(config, name), name
    assert format_value("text_columns", ("title", "content")) == "title, content"
    assert format_value("baseline", False) == "false"


def test_truncated_share_follows_max_length(tmp_path, tiny_model):
    from core.training.model import load_tokenizer

    path = tmp_path / "a.csv"
    reviews_frame(60).to_csv(path, index=False)
    prepared = prepare(TrainConfig(dataset=str(path)))
    stats = data_stats(prepared, load_tokenizer(str(tiny_model)), max_length=8)
    assert stats.truncated_at(8) == stats.truncated_share
    assert stats.truncated_at(4) > stats.truncated_at(8) > stats.truncated_at(10_000) == 0.0
    assert data_stats(prepared, None).truncated_at(8) is None
    assert list(stats.token_lengths) == sorted(stats.token_lengths) and len(stats.token_lengths) == 60
