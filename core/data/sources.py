"""Where rows come from: local files in any encoding, and Hugging Face Hub datasets (streamed when a sample will do)."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from core.config import TrainConfig
from core.errors import DatasetError

LOCAL_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


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

    from core.textfile import NotText, check_regular, read_text

    try:
        check_regular(path)  # /dev/zero behind a link would be read forever, a FIFO would block
    except NotText as exc:
        raise DatasetError(f"{exc}; give a .csv, .tsv, .json, .jsonl or .parquet file of reviews") from None
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
        if suffix in (".csv", ".tsv"):
            return _read_delimited(path, decoded.text, "\t" if suffix == ".tsv" else ",", notes), notes
        if suffix == ".jsonl":
            return _read_json_lines(path, decoded.text, notes), notes
        try:
            return pd.read_json(io.StringIO(decoded.text)), notes
        except ValueError:
            return _read_json_lines(path, decoded.text, notes), notes
    except NotText as exc:
        raise DatasetError(f"{exc}; give a .csv, .tsv, .json, .jsonl or .parquet file of reviews") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path} is empty; it needs a header row and labelled rows") from None
    except IsADirectoryError:
        raise DatasetError(f"{path} is a folder, not a file") from None
    except (ValueError, pd.errors.ParserError, OSError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot read {path} as {suffix[1:]}: {first}") from None


SEP_LINE = re.compile(r"^sep=(.)\s*$")  # Excel's first line naming the delimiter
OTHER_DELIMITERS = (";", "\t", "|")


def _read_delimited(path: Path, text: str, sep: str, notes: list[str]) -> pd.DataFrame:
    """A CSV or TSV, its delimiter detected: Excel's `sep=;` first line, or a header that holds no comma but
    semicolons (European Excel), tabs or pipes. A row with more fields than the header is refused, naming it."""
    import io
    import warnings

    first, _, rest = text.partition("\n")
    named = SEP_LINE.match(first.strip("\r"))
    if named:
        sep, text = named.group(1), rest
        notes.append(f"{path.name}: delimiter {sep!r} (from its sep= first line)")
    elif sep not in first:
        found = next((d for d in OTHER_DELIMITERS if d != sep and d in first), None)
        if found is not None:
            sep = found
            notes.append(f"{path.name}: delimiter {'tab' if sep == chr(9) else repr(sep)} detected (not a comma)")
    header = len(next(csv.reader([text.partition("\n")[0]], delimiter=sep), []))
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(io.StringIO(text), sep=sep, index_col=False)
        except pd.errors.ParserWarning:  # the first row has more fields than the header: pandas would shift it
            row = next(csv.reader(text.splitlines()[1:2], delimiter=sep), [])
            raise DatasetError(_ragged(path, 2 + bool(named), header, len(row))) from None
        except pd.errors.ParserError as exc:
            match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if match is None:
                raise
            raise DatasetError(_ragged(path, int(match.group(2)) + bool(named), int(match.group(1)),
                                       int(match.group(3)))) from None


def _ragged(path: Path, line: int, header: int, seen: int) -> str:
    return (f"line {line} of {path.name} has {seen} fields but the header has {header} (an unquoted comma in a "
            "review?); quote each text in double quotes (a spreadsheet's CSV export does) or fix that line")


def _read_json_lines(path: Path, text: str, notes: list[str]) -> pd.DataFrame:
    """One JSON object per line. A file holding one JSON array instead is read as that array (and said); a line
    that is not complete JSON (a file cut short) is refused with its number."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            if not rows and line.lstrip().startswith("["):
                return _json_array(path, text, notes)
            raise DatasetError(f"line {number} of {path.name} is not complete JSON (cut short?): "
                               f"{line.strip()[:60]!r}; fix or delete that line") from None
        if isinstance(value, list) and not rows:
            return _json_array(path, text, notes)
        if not isinstance(value, dict):
            raise DatasetError(f"line {number} of {path.name} holds a JSON {type(value).__name__}, not an object "
                               "with named fields; write one object per line, such as {\"text\": ..., \"label\": ...}")
        rows.append(value)
    return pd.DataFrame(rows)


def _json_array(path: Path, text: str, notes: list[str]) -> pd.DataFrame:
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise DatasetError(f"{path.name} starts a JSON array that does not parse ({exc}); "
                           "fix it, or write one object per line") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"{path.name} holds a JSON array of values, not of objects with named fields; "
                           "write one object per line, such as {\"text\": ..., \"label\": ...}")
    notes.append(f"{path.name}: one JSON array of rows, not one object per line; read as such")
    return pd.DataFrame(rows)


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
    if pool:
        kept = _kept_sample(config, pool)
        if kept is not None:  # streamed before: the same rows, without the Hub (a run resumed offline too)
            return kept
    offline = hub_offline()
    if not offline and not hub_reachable():
        raise DatasetError(
            f"cannot reach the Hugging Face Hub to download dataset '{name}'; "
            "train offline from a local file instead: --dataset reviews.csv (or set HF_HUB_OFFLINE=1 to use a cached copy)"
        )
    import datasets

    if pool and not offline:
        try:
            sample = _stream_sample(config, pool, progress)
        except Exception:  # cannot stream this one (or a bad name): the whole download says what is wrong
            pass
        else:
            _keep_sample(config, pool, *sample)
            return sample
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


def _sample_path(config: TrainConfig, pool: int) -> Path:
    """Where a streamed sample is kept: beside the datasets library's own cache, one file per dataset, config,
    seed and size (the stream gives the same rows for the same four)."""
    import hashlib

    import datasets

    key = json.dumps([config.dataset, config.dataset_config, config.seed, pool, STREAM_BUFFER])
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", config.dataset).strip("-")[:60]
    return Path(datasets.config.HF_DATASETS_CACHE) / "sentitune-samples" / \
        f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.parquet"


def _kept_sample(config: TrainConfig, pool: int) -> tuple[pd.DataFrame, dict[str, list[str]]] | None:
    """The sample streamed by an earlier run, or None (never streamed, or its file damaged)."""
    path = _sample_path(config, pool)
    try:
        frame = pd.read_parquet(path)
        names = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except Exception:  # missing or damaged: stream it again
        return None
    return frame, {str(k): list(v) for k, v in names.items()} if isinstance(names, dict) else {}


def _keep_sample(config: TrainConfig, pool: int, frame: pd.DataFrame, names: dict[str, list[str]]) -> None:
    """Keep a streamed sample for later runs (each streamed it again: minutes on a slow link); best effort."""
    path = _sample_path(config, pool)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        frame.to_parquet(partial)
        path.with_suffix(".json").write_text(json.dumps(names), encoding="utf-8")
        os.replace(partial, path)
    except Exception:  # a read-only cache or an odd column type: later runs stream again
        pass


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
