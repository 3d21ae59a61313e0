"""Tokenize the splits once (cached on disk), without padding: batches are padded as they are built."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

from core.data.clean import SPLITS, PreparedData

MODEL_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "label")


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash that changes whenever the tokenizer would produce different ids."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Without the truncation and padding the last call left set: using the tokenizer changed the key, and a
        # resumed run (whose tokenizer had tokenized before) tokenized its splits again.
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        digest.update(json.dumps(spec, sort_keys=True).encode())
    else:
        digest.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    return digest.hexdigest()[:16]


def cache_key(data: PreparedData, tokenizer, max_length: int) -> str:
    return f"{data.fingerprint()}-{tokenizer_fingerprint(tokenizer)}-{max_length}"


def tokenize_splits(data: PreparedData, tokenizer, max_length: int, cache_dir: str | Path | None = None,
                    stop=None):
    """A DatasetDict of the three splits with input ids, labels, texts and token lengths.

    Validation and test are ordered by length so evaluation batches carry little padding. `stop` (a
    core.training.stopping.StopSignal) is checked between batches of 1,000 reviews (between splits when several
    worker processes tokenize). Returns (datasets, from_cache).
    """
    import datasets

    key = cache_key(data, tokenizer, max_length)
    path = Path(cache_dir) / key if cache_dir else None
    if path is not None and path.exists() and not (path / "dataset_dict.json").exists():
        shutil.rmtree(path, ignore_errors=True)  # left half-written by an older version
    if path is not None and (path / "dataset_dict.json").exists():
        try:
            return datasets.load_from_disk(str(path)), True
        except Exception:  # a damaged cache entry is rebuilt, not fatal
            shutil.rmtree(path, ignore_errors=True)

    def encode(batch):
        out = tokenizer(batch["text"], truncation=True, max_length=max_length)
        out["length"] = [len(ids) for ids in out["input_ids"]]
        return out

    def encode_unless_stopped(batch):
        stop.check()
        return encode(batch)

    splits = {}
    for name in SPLITS:
        if stop is not None:
            stop.check()
        frame = data.splits[name]
        ds = datasets.Dataset.from_dict({"text": frame["text"].tolist(), "label": frame["label"].tolist()})
        workers = _workers(len(ds))
        # Worker processes cannot see this process's stop Event: they are checked between splits only.
        fn = encode_unless_stopped if stop is not None and workers is None else encode
        # An explicit fingerprint: datasets cannot hash a function holding a threading.Event.
        ds = ds.map(fn, batched=True, batch_size=1000, num_proc=workers,
                    new_fingerprint=f"{key}-{name}")
        if name != "train":
            ds = ds.sort("length")
        splits[name] = ds
    result = datasets.DatasetDict(splits)
    if path is not None:
        # A name of its own: two machines sharing one cache folder may write the same entry at once.
        tmp = path.with_name(f"{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        result.save_to_disk(str(tmp))
        try:
            tmp.rename(path)
        except OSError:  # another process finished the same entry first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        result = datasets.load_from_disk(str(path))
    return result, False


PARALLEL_ROWS = 50_000  # below this, starting worker processes costs more than it saves


def _workers(rows: int) -> int | None:
    """Tokenizer worker processes for a split of `rows` rows (None: tokenize in this process)."""
    from core.training.model import cpu_threads

    if rows < PARALLEL_ROWS:
        return None
    return max(1, min(cpu_threads(), 8))


def model_inputs(ds):
    """The dataset without the columns the model does not take (text); `length` stays for the sampler."""
    keep = set(MODEL_COLUMNS) | {"length", "idx"}
    return ds.remove_columns([c for c in ds.column_names if c not in keep])


class PaddingCollator:
    """Pads each batch to its own longest sequence and drops the `length` helper column."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorWithPadding

        self._pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features):
        batch = self._pad([{k: v for k, v in f.items() if k not in ("length", "idx")} for f in features])
        if features and "idx" in features[0]:  # training reviews' places, for the training dynamics
            import torch

            batch["idx"] = torch.tensor([f["idx"] for f in features], dtype=torch.long)
        return batch
