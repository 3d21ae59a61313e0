"""Load a dataset (hub or local file), pick columns, map labels, clean, subsample and split it."""

from __future__ import annotations

import hashlib
import os
import socket
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


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers, checked quickly (the libraries retry for ~30 s otherwise)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _read_local(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", encoding="utf-8-sig")
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, encoding="utf-8")
        if suffix == ".json":
            try:
                return pd.read_json(path, encoding="utf-8")
            except ValueError:
                return pd.read_json(path, lines=True, encoding="utf-8")
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text; re-save it with UTF-8 encoding") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path} is empty; it needs a header row and labelled rows") from None
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot read {path} as {suffix[1:]}: {first}") from None
    raise DatasetError(f"{path}: unsupported file type; use one of {', '.join(LOCAL_SUFFIXES)}")


def _load_local(source: str) -> pd.DataFrame:
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset file not found: {source}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in LOCAL_SUFFIXES)
        if not files:
            raise DatasetError(f"folder {source} holds no {', '.join(LOCAL_SUFFIXES)} files")
        return pd.concat([_read_local(p) for p in files], ignore_index=True)
    return _read_local(path)


def _load_hub(config: TrainConfig, pool: int | None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Rows from the hub dataset's train split (or its first split), sampled down to `pool` rows."""
    name = config.dataset
    if not hub_reachable():
        raise DatasetError(
            f"cannot reach the Hugging Face Hub to download dataset '{name}'; "
            "train offline from a local file instead: --dataset reviews.csv (or set HF_HUB_OFFLINE=1 to use a cached copy)"
        )
    import datasets

    try:
        loaded = datasets.load_dataset(name, config.dataset_config or None)
    except (ConnectionError, TimeoutError) as exc:
        raise DatasetError(f"download of dataset '{name}' failed ({exc}); use a local file: --dataset reviews.csv") from None
    except Exception as exc:  # datasets raises many types for a bad name or config
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot load dataset '{name}': {first}") from None
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


def clean(frame: pd.DataFrame, text_cols: list[str], label_col: str, class_names: list[str] | None):
    """Join text, map labels, and drop empty, unlabelled, neutral and duplicate rows."""
    rows_read = len(frame)
    texts = [join_text(list(row)) for row in frame[text_cols].itertuples(index=False, name=None)]
    work = pd.DataFrame({"text": texts, "raw_label": frame[label_col].values})
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


def load_clean(config: TrainConfig) -> CleanRows:
    """Load the source `config` names, pick its columns, map labels and clean every row."""
    pool = config.max_samples * 2 if config.max_samples else None
    if is_local_source(config.dataset):
        raw, class_names = _load_local(config.dataset), {}
        source = str(Path(config.dataset).expanduser())
    else:
        raw, class_names = _load_hub(config, pool)
        source = config.dataset
    if raw.empty:
        raise DatasetError(f"{config.dataset} has no rows")
    raw.columns = [str(c) for c in raw.columns]
    text_cols, label_col, notes = detect_columns(list(raw.columns), config)
    rows, mapping, counts = clean(raw, text_cols, label_col, class_names.get(label_col))
    present = set(rows["label"].unique())
    if len(present) < 2:
        raise DatasetError(
            f"only one label ({mapping.names[int(next(iter(present)))]}) left in column '{label_col}' after cleaning; "
            "a classifier needs at least two classes"
        )
    notes.append(f"labels: {mapping.description}")
    return CleanRows(rows, mapping, text_cols, label_col, counts, source, notes)


def prepare(config: TrainConfig) -> PreparedData:
    """Load, clean, subsample and split the dataset `config` names."""
    loaded = load_clean(config)
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
