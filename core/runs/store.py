"""Run folders: creation, status, listing and loading, with damaged files named rather than crashed on."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.events import Event, read_events
from core.files import json_kind, read_object, write_json_atomic
from core.runs import layout
from core.runs.layout import RunStatus


def effective_status(run_dir: Path, status: dict[str, Any]) -> str:
    """The recorded status, corrected to `interrupted` when it says the run is live and no process holds its
    lock (a detached run's lock is held from before its process starts: core.runs.control)."""
    from core.runs.lock import is_locked

    state = status.get("status", RunStatus.UNKNOWN) if isinstance(status, dict) else RunStatus.UNKNOWN
    if not isinstance(state, str):
        return RunStatus.UNKNOWN
    if state in layout.LIVE and not is_locked(run_dir):
        return RunStatus.INTERRUPTED
    return state


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Which keys of a run's files must have which JSON types, so a damaged file is named, not crashed on.
_NUMBER = (int, float)
_SHAPES: dict[str, dict[str, tuple[type, ...]]] = {
    layout.CONFIG: {"config": (dict,), "created": _NUMBER, "label_names": (list,), "device": (str,)},
    layout.STATUS: {"status": (str,), "error": (str, type(None)), "updated": _NUMBER, "pid": (int, type(None)),
                    "child_pid": (int, type(None)), "owner": (str, type(None))},
    layout.METRICS: {"validation": (list,), "test": (dict, type(None)), "baseline": (dict, type(None)),
                     "train_samples_per_second": (*_NUMBER, type(None)), "calibration": (dict, type(None)),
                     "reliability": (list, type(None)), "kept": (dict, type(None)),
                     "phases": (dict, type(None))},
}


def shape_problem(name: str, data: dict[str, Any]) -> str | None:
    """What is wrong with the shape of run file `name` holding `data`, or None when it is usable."""
    for key, types in _SHAPES.get(name, {}).items():
        if key in data and (not isinstance(data[key], types) or isinstance(data[key], bool) and bool not in types):
            return f"{name}: '{key}' holds a JSON {json_kind(data[key])}"
    if name == layout.METRICS:
        rows = [*(data.get("validation") or []), data.get("test") or {}, data.get("baseline") or {}]
        for row in rows:
            if not isinstance(row, dict):
                return f"{name}: a validation entry is a JSON {json_kind(row)}, not an object"
            for key in _METRIC_KEYS:
                if key in row and not (_is_number(row[key]) or row[key] is None):
                    return f"{name}: '{key}' is not a number"
            per_class = row.get("per_class", {})
            if not isinstance(per_class, dict) or not all(
                    isinstance(v, dict) and all(_is_number(x) for x in v.values()) for v in per_class.values()):
                return f"{name}: 'per_class' is not a table of numbers"
        calibration = data.get("calibration") or {}
        if not all(_is_number(calibration.get(k)) or calibration.get(k) is None  # None: no temperature applied
                   for k in ("temperature", "ece_before", "ece_after") if k in calibration):
            return f"{name}: 'calibration' holds a figure that is not a number"
        if not all(isinstance(b, dict) and all(_is_number(v) for v in b.values()) for b in data.get("reliability") or []):
            return f"{name}: 'reliability' is not a list of bins of numbers"
    return None


# Figures a metrics.json row holds; each must be a number (or null) for the run to be shown.
_METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "f1_macro", "loss", "step", "epoch", "n", "sampled_from",
                "accuracy_ci_low", "accuracy_ci_high", "ece")


def read_run_file(path: str | Path) -> dict[str, Any]:
    """A run file (config, status or metrics) that parses and has the expected shape, else RunError."""
    path = Path(path)
    data = read_object(path)
    problem = shape_problem(path.name, data)
    if problem:
        raise RunError(f"{problem} in run {path.parent.name}; the run folder is damaged")
    return data


def slugify(text: str) -> str:
    """A short, file-name-safe version of a model or dataset name."""
    from core.format import short_name

    name = re.sub(r"\.(csv|tsv|jsonl?|parquet)$", "", short_name(text))
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower()[:40] or "run"


def create_run_dir(root: str | Path, model: str, dataset: str) -> Path:
    """A new, empty `root/<YYYYmmdd-HHMMSS>-<model>-<dataset>` folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = f"{datetime.now():%Y%m%d-%H%M%S}-{slugify(model)}-{slugify(dataset)}"
    for n in range(1, 1000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"could not create a run folder under {root}")


def write_status(run_dir: str | Path, status: str, error: str | None = None, **extra: Any) -> None:
    """Record the run's state in status.json, with this process's pid; the owner (core.runs.control.Owner)
    stays as recorded unless `owner` is given."""
    path = Path(run_dir) / layout.STATUS
    if "owner" not in extra:
        try:
            extra["owner"] = read_object(path).get("owner")
        except RunError:
            extra["owner"] = None
    write_json_atomic(path, {"status": status, "error": error, "updated": time.time(), "pid": os.getpid(), **extra})


@dataclass(frozen=True)
class RunInfo:
    """A run as listed: where it is, its state and headline metrics."""

    path: Path
    status: str
    created: float
    model: str
    dataset: str
    device: str
    val_accuracy: float | None
    val_f1: float | None
    test_accuracy: float | None
    test_f1: float | None
    error: str | None
    val_f1_macro: float | None = None
    """Of the best evaluation, as val_accuracy and val_f1: what ranks a sweep's runs (SELECTION_METRIC)."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def has_model(self) -> bool:
        return (self.path / layout.MODEL / "config.json").exists()


SELECTION_METRIC = "f1_macro"
"""What picks a run's best evaluation (the model it keeps) and ranks a sweep: the F1 of each class, averaged.
The reported F1 of a two-class run is the positive class's, which a model calling every review positive
scores 0.67 on balanced data; on the average of both classes it scores 0.33, and cannot win."""


def selection_score(metrics: dict[str, Any]) -> float:
    """An evaluation's SELECTION_METRIC (its F1, for runs that recorded no other), 0 when it has neither."""
    for key in (SELECTION_METRIC, "f1"):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 0.0


def headline_f1(metrics: dict[str, Any]) -> float | None:
    """The one F1 shown for a run: macro (SELECTION_METRIC). Runs recorded before F1 was macro everywhere kept the
    positive class's as `f1`, beside `f1_macro`: the macro one is shown for them too."""
    value = metrics.get(SELECTION_METRIC, metrics.get("f1"))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _best_validation(metrics: dict[str, Any]) -> dict[str, float]:
    """The validation metrics of the best evaluation (by SELECTION_METRIC, the first of equals), if any."""
    history = [m for m in metrics.get("validation") or [] if isinstance(m, dict)]
    if not history:
        return {}
    return max(history, key=selection_score)


def run_info(path: str | Path) -> RunInfo:
    """Summarise one run folder; damaged files give an `unreadable` status instead of an error."""
    path = Path(path)
    try:
        config = read_run_file(path / layout.CONFIG)
        status = read_run_file(path / layout.STATUS)
    except RunError as exc:
        return RunInfo(path, RunStatus.UNREADABLE, _mtime(path), "?", "?", "?", None, None, None, None, str(exc))
    try:  # without usable metrics the run is still listed, with no figures (the report says why)
        metrics = read_run_file(path / layout.METRICS) if (path / layout.METRICS).exists() else {}
    except RunError:
        metrics = {}
    val = _best_validation(metrics)
    test = metrics.get("test") or {}
    cfg = config.get("config", {})
    return RunInfo(
        path=path,
        status=effective_status(path, status),
        created=config.get("created", _mtime(path)),
        model=str(cfg.get("model", "?")),
        dataset=str(cfg.get("dataset", "?")),
        device=str(config.get("device", "?")),
        val_accuracy=val.get("accuracy"),
        val_f1=headline_f1(val),
        test_accuracy=test.get("accuracy"),
        test_f1=headline_f1(test),
        error=status.get("error"),
        val_f1_macro=val.get(SELECTION_METRIC),
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def list_runs(root: str | Path) -> list[RunInfo]:
    """Every run folder under `root`, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [run_info(p) for p in root.iterdir() if p.is_dir() and (p / layout.CONFIG).exists()]
    return sorted(runs, key=lambda r: (r.created, r.name), reverse=True)


def resolve_run(ref: str | Path, root: str | Path = "runs") -> Path:
    """A run folder from a path or a name (or unique prefix) under `root`."""
    path = Path(ref)
    if path.is_dir():
        return path
    root = Path(root)
    if (root / str(ref)).is_dir():
        return root / str(ref)
    matches = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(str(ref))] if root.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RunError(f"'{ref}' matches {len(matches)} runs in {root}; give more of the name")
    raise RunError(f"no run folder '{ref}' (looked in . and {root}); `sentitune runs` lists them")


class Run:
    """One run folder, read lazily: config, status, metrics, events and test predictions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunError(f"run folder not found: {self.path}")
        if not (self.path / layout.CONFIG).exists():
            raise RunError(f"{self.path} is not a sentitune run (no config.json)")

    @property
    def info(self) -> RunInfo:
        return run_info(self.path)

    @property
    def config_record(self) -> dict[str, Any]:
        """config.json: the effective config, library versions, device."""
        return read_run_file(self.path / layout.CONFIG)

    @property
    def status(self) -> dict[str, Any]:
        return read_run_file(self.path / layout.STATUS)

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json, or an empty dict while the run has written none."""
        path = self.path / layout.METRICS
        return read_run_file(path) if path.exists() else {}

    @property
    def model_dir(self) -> Path:
        return self.path / layout.MODEL

    def events(self) -> list[Event]:
        return read_events(self.path / layout.EVENTS)

    def test_predictions(self) -> list[dict[str, Any]]:
        """Saved test predictions (text, label, predicted, confidence, probabilities)."""
        path = self.path / layout.TEST_PREDICTIONS
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):  # a damaged line is skipped, not shown
                rows.append(row)
        return rows

    def train_config(self):
        """The run's TrainConfig; RunError when config.json holds settings this version cannot use."""
        from core.config import TrainConfig
        from core.errors import ConfigError

        try:
            return TrainConfig.from_dict(self.config_record.get("config", {}))
        except ConfigError as exc:
            raise RunError(f"config.json of run {self.path.name} holds invalid settings ({exc}); "
                           "the run folder is damaged or from another version") from None


def load_run(ref: str | Path, root: str | Path = "runs") -> Run:
    """Open a run by path or name."""
    return Run(resolve_run(ref, root))


def latest_finished(root: str | Path) -> RunInfo | None:
    """The newest finished run with a saved model; the newest stopped one with a model only when none finished
    (a stopped run may have trained an epoch or less)."""
    runs = [info for info in list_runs(root) if info.has_model]
    for wanted in (RunStatus.FINISHED, RunStatus.STOPPED):
        for info in runs:
            if info.status == wanted:
                return info
    return None


WATCHED = (layout.STATUS, layout.METRICS, f"{layout.MODEL}/config.json", f"{layout.MODEL}/{layout.CALIBRATION}",
           f"{layout.ONNX}/{layout.EXPORT_RECORD}")
"""The files of a run whose change a view of the runs folder shows (not events.jsonl: it grows all the time)."""


def runs_fingerprint(root: str | Path) -> tuple:
    """What changes when a run or sweep appears, goes, changes state, saves a model or is exported: for a view
    of the runs folder to notice what other processes did, with a few stat calls per run."""
    root = Path(root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return ()
    seen = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            seen.append((entry.name, _stamp(Path(entry.path))))
        elif entry.is_dir():
            seen.append((entry.name, tuple(_stamp(Path(entry.path) / name) for name in WATCHED)))
    return tuple(seen)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclass(frozen=True)
class TrainRate:
    """How fast an earlier run of a model trained on a device, to estimate how long a new one will take."""

    samples_per_second: float
    run_name: str
    mean_tokens: float | None = None
    """Tokens per training review in that run (None in runs recorded before it was kept)."""

    def seconds(self, train_samples: int, epochs: int) -> float:
        """Training time for `train_samples` reviews over `epochs` passes at this rate."""
        return train_samples * epochs / self.samples_per_second


def train_rate(root: str | Path, model: str, device: str) -> TrainRate | None:
    """The training rate of the newest earlier run of `model` on `device`, if there is one."""
    for info in list_runs(root):
        if info.model != model or info.device != device:
            continue
        try:
            metrics = read_run_file(info.path / layout.METRICS)
        except (RunError, OSError):
            continue
        rate, tokens = metrics.get("train_samples_per_second") or 0, metrics.get("train_mean_tokens")
        if isinstance(rate, (int, float)) and rate > 0:
            return TrainRate(float(rate), info.name, float(tokens) if isinstance(tokens, (int, float)) else None)
    return None


def recent_models(root: str | Path, limit: int = 10) -> list[str]:
    """Models of the runs in `root`, newest first, each once (what to offer when a model is typed)."""
    seen: list[str] = []
    for info in list_runs(root):
        if info.model not in seen and info.model != "?":
            seen.append(info.model)
    return seen[:limit]
