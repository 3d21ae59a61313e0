"""Load a dataset (hub or local file), pick columns, map labels, clean, subsample and split it."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from core.config import TrainConfig, split_sizes
from core.errors import DatasetError
from core.labels import LabelMapping, map_labels

LOCAL_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
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

    @property
    def is_binary(self) -> bool:
        return len(self.label_names) == 2

    def fingerprint(self) -> str:
        """A hash of every split's texts and labels, for caching tokenized data."""
        digest = hashlib.sha256()
        for name in SPLITS:
            frame = self.splits[name]
            digest.update(name.encode())
            digest.update(pd.util.hash_pandas_object(frame[["text", "label"]], index=False).values.tobytes())
        return digest.hexdigest()[:16]


def is_local_source(source: str) -> bool:
    """True when `source` names a local file or folder rather than a hub dataset."""
    return Path(source).exists() or source.lower().endswith(LOCAL_SUFFIXES) or source.startswith((".", "/", "~"))


def hub_offline() -> bool:
    """Whether the user turned the Hub off (HF_HUB_OFFLINE): then only cached copies are used."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers, checked quickly (the libraries retry for ~30 s otherwise).

    Behind an HTTPS proxy a direct connection fails where the libraries would work: then assume it answers.
    """
    if hub_offline():
        return False
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _read_local(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """One file's rows, and notes on how it was read (a detected encoding, NULs removed)."""
    import io

    from core.textfile import NotText, read_text

    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise DatasetError(f"{path}: unsupported file type; use one of {', '.join(LOCAL_SUFFIXES)}")
    notes: list[str] = []
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path), notes
        decoded = read_text(path)
        if decoded.note:
            notes.append(f"{path.name}: {decoded.note}")
        text = io.StringIO(decoded.text)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(text, sep="\t" if suffix == ".tsv" else ","), notes
        if suffix == ".jsonl":
            return pd.read_json(text, lines=True), notes
        try:
            return pd.read_json(text), notes
        except ValueError:
            return pd.read_json(io.StringIO(decoded.text), lines=True), notes
    except NotText as exc:
        raise DatasetError(f"{exc}; give a .csv, .tsv, .json, .jsonl or .parquet file of reviews") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path} is empty; it needs a header row and labelled rows") from None
    except IsADirectoryError:
        raise DatasetError(f"{path} is a folder, not a file") from None
    except (ValueError, pd.errors.ParserError, OSError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot read {path} as {suffix[1:]}: {first}") from None


def check_local_source(source: str) -> None:
    """DatasetError when `source` names a local file or folder that is not there (hub names pass)."""
    if is_local_source(source) and not Path(source).expanduser().exists():
        raise DatasetError(f"dataset file not found: {source}")


def _load_local(source: str) -> tuple[pd.DataFrame, list[str]]:
    check_local_source(source)
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in LOCAL_SUFFIXES and p.is_file())
        if not files:
            raise DatasetError(f"folder {source} holds no {', '.join(LOCAL_SUFFIXES)} files")
        parts = [_read_local(p) for p in files]
        return pd.concat([frame for frame, _ in parts], ignore_index=True), [n for _, notes in parts for n in notes]
    return _read_local(path)


STREAM_BUFFER = 10_000  # rows the seeded shuffle draws from: enough to mix them, a sliver of a large split


def _load_hub(config: TrainConfig, pool: int | None,
              progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Rows from the hub dataset's train split (or its first split), sampled down to `pool` rows.

    With a pool (max_samples set) the split is streamed: a seeded shuffle over a 10,000-row buffer, then
    the first `pool` rows, so 5,000 reviews need a few MB instead of the whole dataset (1.15 GB for
    amazon_polarity). Offline, or for datasets that cannot stream, the cached or downloaded copy is used.
    """
    name = config.dataset
    offline = hub_offline()
    if not offline and not hub_reachable():
        raise DatasetError(
            f"cannot reach the Hugging Face Hub to download dataset '{name}'; "
            "train offline from a local file instead: --dataset reviews.csv (or set HF_HUB_OFFLINE=1 to use a cached copy)"
        )
    import datasets

    if pool and not offline:
        try:
            return _stream_sample(config, pool, progress)
        except Exception:  # cannot stream this one (or a bad name): the whole download says what is wrong
            pass
    if progress:
        progress(f"downloading {name} (the whole dataset; later runs read the cached copy)")
    try:
        loaded = datasets.load_dataset(name, config.dataset_config or None)
    except Exception as exc:
        if offline:  # datasets reads its cache only; whatever failed, the dataset is not there
            raise DatasetError(
                f"dataset '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot "
                "be downloaded; unset HF_HUB_OFFLINE to download it, or use a local file: --dataset reviews.csv"
            ) from None
        raise _hub_error(name, exc) from None
    return _sampled_hub_split(loaded, config, pool)


def _stream_sample(config: TrainConfig, pool: int,
                   progress: Callable[[str], None] | None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """`pool` rows of the hub split, streamed through a seeded shuffle buffer (the same rows for the same seed)."""
    import datasets

    streamed = datasets.load_dataset(config.dataset, config.dataset_config or None, streaming=True)
    split = "train" if "train" in streamed else next(iter(streamed))
    ds = streamed[split]
    rows, last = [], time.monotonic()
    for row in ds.shuffle(seed=config.seed, buffer_size=STREAM_BUFFER).take(pool):
        rows.append(row)
        if progress and time.monotonic() - last >= 1.0:
            last = time.monotonic()
            progress(f"reading {config.dataset}: {len(rows):,} of {pool:,} rows (streamed, not downloaded whole)")
    features = ds.features or {}
    names = {col: list(f.names) for col, f in features.items() if isinstance(f, datasets.ClassLabel)}
    return pd.DataFrame(rows), names


def _hub_error(name: str, exc: Exception) -> DatasetError:
    """A failed hub download, worded by what went wrong (datasets raises many types for a bad name or config)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return DatasetError(f"download of dataset '{name}' failed ({exc}); use a local file: --dataset reviews.csv")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatasetError(f"cannot load dataset '{name}': {first}")


def _sampled_hub_split(loaded, config: TrainConfig, pool: int | None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    import datasets

    split = "train" if "train" in loaded else next(iter(loaded))
    ds = loaded[split]
    if pool and len(ds) > pool:
        ds = ds.shuffle(seed=config.seed).select(range(pool))
    class_names = {
        col: list(feature.names)
        for col, feature in ds.features.items()
        if isinstance(feature, datasets.ClassLabel)
    }
    return ds.to_pandas(), class_names


def detect_columns(columns: list[str], config: TrainConfig) -> tuple[list[str], str, list[str]]:
    """(text columns, label column, notes) from the config or by name."""
    notes: list[str] = []
    lower = {c.lower(): c for c in columns}
    shown = ", ".join(map(str, columns))
    if config.text_columns:
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


def clean(frame: pd.DataFrame, text_cols: list[str], label_col: str, class_names: list[str] | None):
    """Join text, map labels, and drop empty, unlabelled, neutral and duplicate rows."""
    rows_read = len(frame)
    columns = {c: plain_values(frame[c], c, "--text-columns") for c in text_cols}
    labels = plain_values(frame[label_col], label_col, "--label-column")
    texts = [join_text(list(row)) for row in zip(*(columns[c].values for c in text_cols))]
    work = pd.DataFrame({"text": texts, "raw_label": labels.values})
    empty = work["text"] == ""
    work = work[~empty]
    missing = work["raw_label"].isna() | (work["raw_label"].astype(str).str.strip() == "")
    work = work[~missing]
    if work.empty:
        raise DatasetError(f"no rows with both text and a label in columns {' + '.join(text_cols)} / {label_col}")
    ids, mapping = map_labels(work["raw_label"], label_col, class_names)
    work = work.assign(label=ids.values)
    neutral = int((work["label"] == -1).sum())
    work = work[work["label"] >= 0]
    before = len(work)
    work = work.drop_duplicates("text", keep="first")
    report = dict(
        rows_read=rows_read, empty_text=int(empty.sum()), missing_label=int(missing.sum()),
        neutral=neutral, duplicates=before - len(work),
    )
    return work[["text", "label"]].reset_index(drop=True), mapping, report


def _stratified_take(frame: pd.DataFrame, n: int, seed: int, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off `n` rows stratified by label: (taken, rest)."""
    from sklearn.model_selection import train_test_split

    if n <= 0 or n >= len(frame):
        raise DatasetError(f"too few rows ({len(frame)}) to hold out a {what} split; add rows or change the split shares")
    try:
        rest, taken = train_test_split(frame, test_size=n, stratify=frame["label"], random_state=seed)
    except ValueError:
        counts = frame["label"].value_counts()
        raise DatasetError(
            f"too few rows per class to split out a stratified {what} set "
            f"(smallest class has {counts.min()}); add rows or raise max_samples"
        ) from None
    return taken.reset_index(drop=True), rest.reset_index(drop=True)


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


def load_clean(config: TrainConfig, progress: Callable[[str], None] | None = None) -> CleanRows:
    """Load the source `config` names, pick its columns, map labels and clean every row.

    `progress` receives a line now and then while a hub dataset downloads.
    """
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
    rows, mapping, counts = clean(raw, text_cols, label_col, class_names.get(label_col))
    present = set(rows["label"].unique())
    if len(present) < 2:
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
    if config.max_samples and rows_clean > config.max_samples:
        rows, _ = _stratified_take(rows, config.max_samples, config.seed, "max_samples")
    _, n_val, n_test = split_sizes(len(rows), config.val_fraction, config.test_fraction)
    test, rest = _stratified_take(rows, n_test, config.seed, "test")
    val, train = _stratified_take(rest, n_val, config.seed, "validation")
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
