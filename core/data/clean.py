"""Pick columns, map labels, clean, subsample and split the rows a source gave."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import TrainConfig, split_sizes
from core.data.labels import LabelMapping, map_labels
from core.data.sources import _load_hub, _load_local, is_local_source
from core.errors import DatasetError

TEXT_CANDIDATES = ("text", "review", "sentence", "content", "body")
LABEL_CANDIDATES = ("label", "labels", "sentiment", "polarity", "rating", "stars", "score", "class", "target")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class CleaningReport:
    """What cleaning and subsetting did, row by row."""

    rows_read: int
    empty_text: int
    missing_label: int
    neutral: int
    duplicates: int
    rows_clean: int
    rows_used: int

    def lines(self) -> list[str]:
        parts = [f"{self.rows_read} rows read"]
        for count, what in (
            (self.empty_text, "with empty text"),
            (self.missing_label, "with no label"),
            (self.neutral, "neutral (3 stars)"),
            (self.duplicates, "duplicate texts"),
        ):
            if count or what != "neutral (3 stars)":  # star ratings are the only source of neutral rows
                parts.append(f"{count} dropped {what}")
        parts.append(f"{self.rows_clean} clean rows")
        if self.rows_used < self.rows_clean:
            parts.append(f"{self.rows_used} sampled (max_samples)")
        return parts


@dataclass
class PreparedData:
    """Cleaned, split rows ready for tokenization; each split has `text` and `label` (int) columns."""

    splits: dict[str, pd.DataFrame]
    label_names: list[str]
    text_columns: list[str]
    label_column: str
    mapping: LabelMapping
    cleaning: CleaningReport
    source: str
    notes: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """A hash of every split's texts and labels, for caching tokenized data."""
        digest = hashlib.sha256()
        for name in SPLITS:
            frame = self.splits[name]
            digest.update(name.encode())
            digest.update(pd.util.hash_pandas_object(frame[["text", "label"]], index=False).values.tobytes())
        return digest.hexdigest()[:16]


def detect_columns(columns: list[str], config: TrainConfig) -> tuple[list[str], str, list[str]]:
    """(text columns, label column, notes) from the config or by name."""
    notes: list[str] = []
    lower = {c.lower(): c for c in columns}
    shown = ", ".join(map(str, columns))
    if config.text_columns:
        twice = next((c for i, c in enumerate(config.text_columns) if c in config.text_columns[:i]), None)
        if twice is not None:
            raise DatasetError(f"text column '{twice}' is listed twice in text_columns (each review would hold its "
                               "text twice); list each column once")
        missing = [c for c in config.text_columns if c not in columns]
        if missing:
            raise DatasetError(f"text column '{missing[0]}' not found; columns are: {shown}")
        text_cols = list(config.text_columns)
    elif "title" in lower and "content" in lower:
        text_cols = [lower["title"], lower["content"]]
        notes.append(f"text columns auto-detected: {' + '.join(text_cols)}")
    else:
        found = next((lower[c] for c in TEXT_CANDIDATES if c in lower), None)
        if found is None:
            raise DatasetError(f"no text column found; columns are: {shown}; name one with --text-columns")
        text_cols = [found]
        notes.append(f"text column auto-detected: {found}")
    if config.label_column:
        if config.label_column not in columns:
            raise DatasetError(f"label column '{config.label_column}' not found; columns are: {shown}")
        label_col = config.label_column
    else:
        found = next((lower[c] for c in LABEL_CANDIDATES if c in lower and lower[c] not in text_cols), None)
        if found is None:
            raise DatasetError(f"no label column found; columns are: {shown}; name one with --label-column")
        label_col = found
        notes.append(f"label column auto-detected: {found}")
    if label_col in text_cols:
        raise DatasetError(f"column '{label_col}' cannot be both text and label")
    return text_cols, label_col, notes


def join_text(parts: list[Any]) -> str:
    """Join text fields (title + content) into one whitespace-normalised string."""
    out = ""
    for part in parts:
        if part is None or (isinstance(part, float) and pd.isna(part)):
            continue
        piece = " ".join(str(part).split())
        if not piece:
            continue
        if out:
            out += " " if out[-1] in ".!?:;" else ". "
        out += piece
    return out


PLAIN_TYPES = (str, int, float, bool, type(None))


def plain_values(values: pd.Series, column: str, flag: str) -> pd.Series:
    """The column with bytes decoded as UTF-8; DatasetError for nested values (lists, objects) or binary data."""
    import numpy as np

    if values.dtype != object or all(issubclass(t, PLAIN_TYPES) for t in set(map(type, values.values))):
        return values
    out = []
    for row, value in enumerate(values.values, start=1):
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise DatasetError(
                    f"column '{column}' holds binary data that is not UTF-8 text (row {row}); "
                    f"store it as text, or name another column with {flag}"
                ) from None
        elif isinstance(value, (dict, list, tuple, set, np.ndarray)):
            kind = "an object" if isinstance(value, dict) else "a list"
            raise DatasetError(
                f"column '{column}' holds nested values ({kind} in row {row}); "
                f"flatten it to plain values, or name another column with {flag}"
            )
        out.append(value)
    return pd.Series(out, index=values.index, dtype=object)


def clean(frame: pd.DataFrame, text_cols: list[str], label_col: str, class_names: list[str] | None,
          one_class_ok: bool = False):
    """Join text, map labels, and drop empty, unlabelled, neutral and duplicate rows."""
    rows_read = len(frame)
    columns = {c: plain_values(frame[c], c, "--text-columns") for c in text_cols}
    labels = plain_values(frame[label_col], label_col, "--label-column")
    texts = [join_text(list(row)) for row in zip(*(columns[c].values for c in text_cols))]
    # `row`: the review's row in the data as read (1 = the first row under a header), for the data doctor.
    work = pd.DataFrame({"text": texts, "raw_label": labels.values, "row": range(1, rows_read + 1)})
    empty = work["text"] == ""
    work = work[~empty]
    missing = work["raw_label"].isna() | (work["raw_label"].astype(str).str.strip() == "")
    work = work[~missing]
    if work.empty:
        raise DatasetError(f"no rows with both text and a label in columns {' + '.join(text_cols)} / {label_col}")
    ids, mapping = map_labels(work["raw_label"], label_col, class_names, one_class_ok)
    work = work.assign(label=ids.values)
    neutral = int((work["label"] == -1).sum())
    work = work[work["label"] >= 0]
    before = len(work)
    work = work.drop_duplicates("text", keep="first")
    report = dict(
        rows_read=rows_read, empty_text=int(empty.sum()), missing_label=int(missing.sum()),
        neutral=neutral, duplicates=before - len(work),
    )
    return work[["text", "label", "row"]].reset_index(drop=True), mapping, report


def _stratified_take(frame: pd.DataFrame, n: int, seed: int, what: str,
                     names: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off `n` rows stratified by label: (taken, rest)."""
    from sklearn.model_selection import train_test_split

    if n <= 0 or n >= len(frame):
        raise DatasetError(f"too few rows ({len(frame)}) to hold out a {what} split; add rows or change the split shares")
    try:
        rest, taken = train_test_split(frame, test_size=n, stratify=frame["label"], random_state=seed)
    except ValueError:
        raise DatasetError(_too_few_per_class(frame["label"].value_counts(), names, what)) from None
    return taken.reset_index(drop=True), rest.reset_index(drop=True)


def _too_few_per_class(counts: pd.Series, names: list[str] | None, what: str) -> str:
    """Which class is too small to split, with its count, and the class it is probably a typo of."""
    import difflib

    label, count = int(counts.idxmin()), int(counts.min())
    if not names:
        return (f"too few rows per class to split out a stratified {what} set (smallest class has {count}); "
                "add rows or raise max_samples")
    name = names[label]
    if count * 5 > counts.max():  # every class is small: the data is
        return (f"too few rows per class to split out a stratified {what} set (smallest class, '{name}', has "
                f"{count}); add rows or raise max_samples")
    others = [n for i, n in enumerate(names) if i != label and counts.get(i, 0) > count]
    close = difflib.get_close_matches(name, others, n=1, cutoff=0.7)
    typo = f" (a typo of '{close[0]}'?)" if close else ""
    rows = "row" if count == 1 else "rows"
    return (f"class '{name}'{typo} has only {count} {rows}, too few to split out a stratified {what} set; "
            "fix or remove those rows, or add rows of that class")


@dataclass
class CleanRows:
    """All cleaned rows of a source, before subsetting and splitting."""

    rows: pd.DataFrame
    mapping: LabelMapping
    text_columns: list[str]
    label_column: str
    counts: dict[str, int]
    source: str
    notes: list[str]


def load_clean(config: TrainConfig, progress: Callable[[str], None] | None = None,
               one_class_ok: bool = False) -> CleanRows:
    """Load the source `config` names, pick its columns, map labels and clean every row.

    `progress` receives a line now and then while a hub dataset downloads. `one_class_ok`: rows to score, not to
    train on, may all be of one class.
    """
    # Twice the sample read from a hub dataset: cleaning drops rows (empty, neutral, duplicates) before
    # the stratified max_samples subset is taken from what is left.
    pool = config.max_samples * 2 if config.max_samples else None
    read_notes: list[str] = []
    if is_local_source(config.dataset):
        (raw, read_notes), class_names = _load_local(config.dataset), {}
        source = str(Path(config.dataset).expanduser())
    else:
        raw, class_names = _load_hub(config, pool, progress)
        source = config.dataset
    if raw.empty:
        raise DatasetError(f"{config.dataset} has no rows")
    raw.columns = [str(c) for c in raw.columns]
    text_cols, label_col, notes = detect_columns(list(raw.columns), config)
    notes = read_notes + notes
    rows, mapping, counts = clean(raw, text_cols, label_col, class_names.get(label_col), one_class_ok)
    present = set(rows["label"].unique())
    if len(present) < 2 and not one_class_ok:
        raise DatasetError(
            f"only one label ({mapping.names[int(next(iter(present)))]}) left in column '{label_col}' after cleaning; "
            "a classifier needs at least two classes"
        )
    notes.append(f"labels: {mapping.description}")
    return CleanRows(rows, mapping, text_cols, label_col, counts, source, notes)


def prepare(config: TrainConfig, progress: Callable[[str], None] | None = None) -> PreparedData:
    """Load, clean, subsample and split the dataset `config` names."""
    loaded = load_clean(config, progress)
    rows = loaded.rows
    rows_clean = len(rows)
    names = loaded.mapping.names
    if config.max_samples and rows_clean > config.max_samples:
        rows, _ = _stratified_take(rows, config.max_samples, config.seed, "max_samples", names)
    _, n_val, n_test = split_sizes(len(rows), config.val_fraction, config.test_fraction)
    test, rest = _stratified_take(rows, n_test, config.seed, "test", names)
    val, train = _stratified_take(rest, n_val, config.seed, "validation", names)
    return PreparedData(
        splits={"train": train, "validation": val, "test": test},
        label_names=loaded.mapping.names,
        text_columns=loaded.text_columns,
        label_column=loaded.label_column,
        mapping=loaded.mapping,
        cleaning=CleaningReport(rows_clean=rows_clean, rows_used=len(rows), **loaded.counts),
        source=loaded.source,
        notes=loaded.notes,
    )
