"""Statistics for the dataset preview: split sizes, label balance, text lengths, truncation."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.config import PREVIEW_FIELDS, TrainConfig
from core.data.clean import SPLITS, PreparedData, prepare
from core.errors import ModelError


@dataclass(frozen=True)
class LengthStats:
    """Quantiles and a histogram of lengths (characters or tokens)."""

    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: int
    bin_edges: list[float]
    counts: list[int]

    @classmethod
    def of(cls, lengths: list[int] | np.ndarray, bins: int = 20) -> LengthStats:
        values = np.asarray(lengths, dtype=float)
        if values.size == 0:
            return cls(0, 0, 0, 0, 0, 0, [0.0, 1.0], [0])
        counts, edges = np.histogram(values, bins=bins)
        q = np.percentile(values, [50, 90, 95, 99])
        return cls(float(values.mean()), *map(float, q), int(values.max()), edges.tolist(), counts.tolist())


@dataclass(frozen=True)
class DataStats:
    """Everything the dataset preview shows besides the rows themselves."""

    rows: dict[str, int]
    balance: dict[str, dict[str, int]]
    chars: LengthStats
    tokens: LengthStats | None
    max_length: int
    truncated_share: float | None
    token_lengths: tuple[int, ...] = field(default=(), repr=False)
    """Every review's token count, sorted, so the truncated share can follow later max_length edits."""
    sampled: int | None = None
    """When set, lengths come from this many reviews drawn at random (large datasets)."""

    def mean_tokens_at(self, max_length: int) -> float | None:
        """Mean tokens per review once truncated at `max_length` (what training computes on); None without counts."""
        if not self.token_lengths:
            return None
        return sum(min(n, max_length) for n in self.token_lengths) / len(self.token_lengths)

    def truncated_at(self, max_length: int) -> float | None:
        """Share of reviews longer than `max_length` tokens; None without token counts."""
        if self.tokens is None:
            return None
        if not self.token_lengths:
            return 0.0
        count = len(self.token_lengths)
        return (count - bisect_right(self.token_lengths, max_length)) / count


def token_lengths(texts: list[str], tokenizer) -> list[int]:
    """Untruncated token counts (special tokens included) of `texts`."""
    encoded = tokenizer(texts, truncation=False, add_special_tokens=True, verbose=False)
    return [len(ids) for ids in encoded["input_ids"]]


LENGTH_SAMPLE = 20_000  # enough for stable quantiles; tokenizing millions of reviews for a preview is not


def data_stats(data: PreparedData, tokenizer=None, max_length: int = 256, sample: int = LENGTH_SAMPLE) -> DataStats:
    """Statistics over all splits; token figures only when a tokenizer is given.

    Lengths are measured on at most `sample` reviews drawn with a fixed seed.
    """
    rows = {s: len(data.splits[s]) for s in SPLITS}
    balance = {
        s: {data.label_names[i]: int((data.splits[s]["label"] == i).sum()) for i in range(len(data.label_names))}
        for s in SPLITS
    }
    texts = [t for s in SPLITS for t in data.splits[s]["text"].tolist()]
    sampled = None
    if len(texts) > sample:
        import random

        texts, sampled = random.Random(0).sample(texts, sample), sample
    chars = LengthStats.of([len(t) for t in texts])
    tokens = truncated = None
    if tokenizer is not None:
        lengths = token_lengths(texts, tokenizer)
        tokens = LengthStats.of(lengths)
        truncated = float(np.mean(np.asarray(lengths) > max_length)) if lengths else 0.0
    lengths = tuple(sorted(lengths)) if tokenizer is not None else ()
    return DataStats(rows, balance, chars, tokens, max_length, truncated, lengths, sampled)


@dataclass(frozen=True, eq=False)  # compared by identity: comparing DataFrames raises
class Preview:
    """A dataset as `sentitune data` and the app's F1 show it: the split rows, their statistics, and the config."""

    data: PreparedData
    stats: DataStats
    config: TrainConfig
    token_note: str | None = None
    """Why token lengths are missing (the model's tokenizer could not be loaded), if they are."""

    @property
    def rows(self) -> int:
        return self.data.cleaning.rows_clean

    @property
    def source(self) -> str:
        return self.config.dataset

    def stale(self, config: TrainConfig) -> bool:
        """True when `config` would give a different preview than this one (token lengths included)."""
        return any(getattr(self.config, f) != getattr(config, f) for f in PREVIEW_FIELDS)

    def rows_for(self, config: TrainConfig) -> int | None:
        """The clean row count `config` would train on, if this preview knows it.

        Only the data settings matter: another model tokenizes differently but splits the same rows.
        """
        same = all(getattr(self.config, f) == getattr(config, f) for f in PREVIEW_FIELDS if f != "model")
        return self.rows if same else None


COPIES_CHECKED_ROWS = 10_000
"""Near copies are looked for in a preview of up to this many rows (a few seconds for the default 5,000 on two
cores; the search grows faster than the rows). Larger data is said to be unchecked: the doctor checks any size."""


def build_preview(config: TrainConfig, load_tokenizer: Callable[[str], Any],
                  progress: Callable[[str], None] | None = None) -> Preview:
    """Load, clean and split the data, then measure it with the model's tokenizer (`load_tokenizer(model)`).

    Without the tokenizer (a model that cannot be loaded) the preview has character lengths only, and says why.
    """
    data = prepare(config, progress)
    rows = sum(len(frame) for frame in data.splits.values())
    if rows <= COPIES_CHECKED_ROWS:  # warned before any training: copies and leaks flatter the test score
        from core.data.copies import copies_note, find_copies

        if progress:
            progress("looking for near copies and leaks…")
        note_on_copies = copies_note(find_copies(data.splits))
        if note_on_copies:
            data.notes.append(note_on_copies)
    else:
        data.notes.append(f"not checked for near copies and leaks here ({rows:,} rows, over {COPIES_CHECKED_ROWS:,}); "
                          "after training, sentitune doctor RUN checks them")
    if progress:
        progress(f"loading the tokenizer of {config.model}…")
    tokenizer, note = None, None
    try:
        tokenizer = load_tokenizer(config.model)
    except ModelError as err:
        note = f"token lengths use the tokenizer of the model setting ({config.model}), which could not be loaded: {err}"
    if progress:
        progress("counting lengths…")
    return Preview(data, data_stats(data, tokenizer, config.max_length), config, note)
