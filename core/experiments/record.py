"""A sweep in the runs folder: what it is, where each of its points stands, how to find, rank and stop it.

A sweep is three things beside its runs:
- `sweep-<timestamp>.json`, written once: the base settings, what varies, the planned points, whether hopeless
  points are pruned;
- `sweep-<timestamp>.journal`, the Optuna study (core.experiments.study): one trial per point with its run
  folder, how it ended and its figures, appended to by every worker;
- `.sweep-<timestamp>/`, lock files: one per live worker, one per point a worker is training. The kernel drops
  a lock when its process dies, however it dies: a point whose lock is free while its trial still runs was left
  by a worker that is gone, and the next worker goes on with it.

A sweep's state is read from these, never stored: running while a worker lives; finished when every point is
done (finished, failed or pruned); stopped when a stop was asked (its `.stop` file) or a point was stopped;
interrupted when a point was left running by a worker that is gone; otherwise pending. Records of sweeps made
before the study (everything in the JSON file) still read and show; they are not resumed.

Points are ranked by validation macro F1 (then accuracy), never by test scores: choosing by test would make the
test split part of the tuning, and its figures would no longer say how the model does on unseen reviews.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.config import TrainConfig
from core.errors import ConfigError, CoreError, RunError
from core.experiments.plan import describe, grid_to_json, point_configs
from core.files import read_json, read_object, write_json_atomic
from core.runs.control import ask
from core.runs.layout import RunStatus
from core.runs.lock import is_locked
from core.runs.store import run_info, selection_score
from core.training.preflight import check_max_length, disk_message, model_config

PREFIX = "sweep-"
PRUNED = RunStatus.PRUNED
DONE = (RunStatus.FINISHED, RunStatus.FAILED, PRUNED)
"""Point states a resumed sweep leaves alone (a failure is a result: its error is in the run)."""
VERSION = 2


# ------------------------------------------------------------------ files


def journal_file(path: Path) -> Path:
    return path.with_suffix(".journal")


def locks_folder(path: Path) -> Path:
    return path.with_name(f".{path.stem}")


def worker_lock(path: Path, name: str) -> Path:
    return locks_folder(path) / f"worker-{name}.lock"


def point_lock(path: Path, number: int) -> Path:
    return locks_folder(path) / f"point-{number}.lock"


def stop_file(path: Path) -> Path:
    return path.with_suffix(".stop")


def lock_file(path: Path) -> Path:
    """The lock of a sweep recorded before the study (one process ran it)."""
    return path.with_name(f".{path.stem}.lock")


def live_workers(path: Path) -> list[str]:
    """The workers of the sweep whose process is alive (host-pid-token), oldest lock first."""
    folder = locks_folder(Path(path))
    if not folder.is_dir():
        return []
    locks = sorted(folder.glob("worker-*.lock"), key=lambda p: p.stat().st_mtime if p.exists() else 0)
    return [p.stem.removeprefix("worker-") for p in locks if is_locked(path=p)]


# ------------------------------------------------------------------ making one


def create_sweep(base: TrainConfig, grid: dict[str, Any], points: list[dict[str, Any]], runs_root: str | Path,
                 random_points: int | None = None, trials: int | None = None, prune: bool = False) -> Path:
    """Write a new sweep (its record, and its study with every point queued); returns the record's path.
    ConfigError, before anything is written, for a point its settings or the model do not allow."""
    from core.experiments import study

    configs = point_configs(base, [p for p in points if p])
    if any(c.max_length != base.max_length for c in configs) or (trials and "max_length" in grid):
        limits = model_config(base.model)
        if trials and "max_length" in grid and isinstance(grid["max_length"], tuple):
            check_max_length(base.replace(max_length=int(grid["max_length"][1])), limits)
        for config, point in zip(configs, [p for p in points if p]):
            try:
                check_max_length(config, limits)
            except ConfigError as exc:
                raise ConfigError({k: f"{v} (in the sweep point {describe(point)})"
                                   for k, v in exc.errors.items()}) from None
    root = Path(runs_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(disk_message(exc, root)) from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{PREFIX}{stamp}.json"
    n = 2
    while path.exists() or journal_file(path).exists():
        path, n = root / f"{PREFIX}{stamp}-{n}.json", n + 1
    record = {
        "kind": "sweep", "version": VERSION, "created": time.time(), "base": base.to_dict(),
        "grid": grid_to_json(grid), "random": random_points, "trials": trials, "prune": bool(prune),
        "study": journal_file(path).name, "points": [{"settings": p} for p in points],
    }
    try:
        study.create(journal_file(path), record)
        locks_folder(path).mkdir(exist_ok=True)
        write_json_atomic(path, record)
    except (OSError, RunError) as exc:
        journal_file(path).unlink(missing_ok=True)
        if isinstance(exc, RunError):
            raise
        raise RunError(f"cannot write the sweep: {disk_message(exc, root)}") from None
    return path


# ------------------------------------------------------------------ reading one


def read_sweep(path: str | Path) -> dict[str, Any]:
    """A sweep's record with each point's state, run folder and figures, and the sweep's own state."""
    path = Path(path)
    record = read_json(path, damaged="the sweep record is damaged: start the sweep again")
    if not isinstance(record, dict) or record.get("kind") != "sweep":
        raise RunError(f"{path.name} is not a sweep record")
    if (problem := _shape_problem(record)) is not None:
        raise RunError(f"sweep record {path.name} is damaged ({problem}); start the sweep again")
    if record.get("study"):
        _from_study(path, record)
    else:
        _earlier_record(path, record)
    for point in record["points"]:  # the scores as the run folder has them now
        if point.get("run_dir"):  # stored by name: the runs folder may be moved, or opened from elsewhere
            point["run_dir"] = str(path.parent / Path(point["run_dir"]).name)
        point.pop("missing", None)
        if point.get("run_dir") and Path(point["run_dir"]).is_dir():
            point.update(point_scores(point["run_dir"]))
        elif point.get("run_dir"):
            point["missing"] = True  # deleted or moved: the figures are the record's own, the model is gone
    return record


def _from_study(path: Path, record: dict[str, Any]) -> None:
    from core.experiments import study

    trials = study.trials(journal_file(path), record)
    for k, point in enumerate(record["points"]):
        trial = trials.get(k)
        point["status"], point["run_dir"] = "pending", None
        if trial is None:
            continue
        attrs = trial.user_attrs
        point["trial"] = trial.number
        if trial.params:
            point["settings"] = {**trial.params, **{n: v for n, v in (attrs.get("settings") or {}).items()}}
        if isinstance(attrs.get("run_dir"), str):
            point["run_dir"] = attrs["run_dir"]
        if isinstance(attrs.get("scores"), dict):
            point.update(attrs["scores"])
        state = trial.state.name
        if state == "COMPLETE":
            point["status"] = RunStatus.FINISHED
        elif state == "PRUNED":
            point["status"] = PRUNED
            if attrs.get("pruned"):
                point["pruned"] = attrs["pruned"]
        elif state == "FAIL":
            point["status"], point["error"] = RunStatus.FAILED, attrs.get("error")
        elif state == "RUNNING":
            if is_locked(path=point_lock(path, trial.number)):
                point["status"] = RunStatus.RUNNING
            elif attrs.get("status") == RunStatus.STOPPED:
                point["status"] = RunStatus.STOPPED
            elif point.get("run_dir"):
                point["status"] = RunStatus.INTERRUPTED
    workers = live_workers(path)
    record["workers"] = workers
    statuses = [p["status"] for p in record["points"]]
    if workers:
        record["status"] = RunStatus.RUNNING
    elif all(s in DONE for s in statuses):
        record["status"] = RunStatus.FINISHED
    elif stop_file(path).exists() or RunStatus.STOPPED in statuses:
        record["status"] = RunStatus.STOPPED
    elif RunStatus.INTERRUPTED in statuses or RunStatus.RUNNING in statuses:
        record["status"] = RunStatus.INTERRUPTED
    else:
        record["status"] = "pending"


def _earlier_record(path: Path, record: dict[str, Any]) -> None:
    """A record written before sweeps had a study: its points' states are its own."""
    record["workers"] = []
    if record.get("status") in (RunStatus.RUNNING, RunStatus.STARTING) and not is_locked(path=lock_file(path)):
        record["status"] = RunStatus.INTERRUPTED
        for point in record["points"]:
            if point.get("status") == RunStatus.RUNNING:
                point["status"] = RunStatus.INTERRUPTED
    elif record.get("status") in (RunStatus.RUNNING, RunStatus.STARTING):
        record["workers"] = ["the process that started it"]


def point_scores(run_dir: str | Path) -> dict[str, float | None]:
    """Validation and test figures as the run folder has them (stored in the study too, as each run ends, so
    the sweep says how its runs did even without them)."""
    info = run_info(run_dir)
    return {"val_f1": info.val_f1, "val_f1_macro": info.val_f1_macro, "val_accuracy": info.val_accuracy,
            "test_accuracy": info.test_accuracy, "test_f1": info.test_f1}


def _shape_problem(record: dict[str, Any]) -> str | None:
    """What makes a record unusable (hand-edited, or from another version), or None."""
    if not isinstance(record.get("base"), dict):
        return "'base' is not an object of settings"
    points = record.get("points")
    if not isinstance(points, list) or not points:
        return "'points' is not a list of runs"
    for k, point in enumerate(points, start=1):
        if not isinstance(point, dict) or not isinstance(point.get("settings"), dict):
            return f"point {k} is not an object with its settings"
        if point.get("run_dir") is not None and not isinstance(point["run_dir"], str):
            return f"point {k}'s run_dir is not a folder name"
        if not isinstance(point.get("status", ""), str):
            return f"point {k}'s status is not a word"
    if record.get("study") is not None and not isinstance(record["study"], str):
        return "'study' is not a file name"
    return None


# ------------------------------------------------------------------ ranking


def ranked(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The points that have a validation F1 and were not pruned, best first: by validation macro F1
    (SELECTION_METRIC; a run that calls every review one class cannot top it), then validation accuracy. Equal
    points keep their order."""
    scored = [p for p in record["points"] if isinstance(p.get("val_f1"), (int, float)) and p.get("status") != PRUNED]
    return sorted(scored, key=rank_key, reverse=True)


def score(point: dict[str, Any]) -> float:
    """A point's validation macro F1 (its F1 for runs that recorded no macro F1)."""
    return selection_score({"f1_macro": point.get("val_f1_macro"), "f1": point.get("val_f1")})


def rank_key(point: dict[str, Any]) -> tuple[float, float]:
    accuracy = point.get("val_accuracy")
    return score(point), float(accuracy) if isinstance(accuracy, (int, float)) else 0.0


def tied_with_best(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The ranked points that score exactly as the best one (several: the pick among them is arbitrary)."""
    best = ranked(record)
    return [p for p in best if best and rank_key(p) == rank_key(best[0])]


def varying(record: dict[str, Any]) -> list[str]:
    """The settings that differ between points."""
    names: list[str] = []
    for point in record["points"]:
        for name in point["settings"]:
            if name not in names and len({repr(p["settings"].get(name)) for p in record["points"]}) > 1:
                names.append(name)
    return names


# ------------------------------------------------------------------ finding and stopping


def resolve_sweep(ref: str | Path, root: str | Path = "runs") -> Path:
    """The record of a sweep given by path or by name (`sweep-20261127-101500`) under the runs folder."""
    path = Path(ref).expanduser()
    for candidate in (path, Path(root) / path.name, Path(root) / f"{path.name}.json",
                      Path(root) / f"{PREFIX}{path.name}.json"):  # its timestamp alone will do
        if candidate.is_file() and candidate.suffix == ".json":
            return candidate
    raise RunError(f"no sweep {ref} in {root}; list them with: sentitune sweep --show --output-dir {root}")


def is_sweep_ref(ref: str, root: str | Path = "runs") -> bool:
    """A sweep's record named by path, by name, or by its timestamp alone (when no run folder is called that)."""
    name = Path(ref).name
    return name.startswith(PREFIX) or (not (Path(root) / name).exists() and (Path(root) / f"{PREFIX}{name}.json").is_file())


def busy(path: Path) -> str:
    return (f"sweep {path.stem} is already running in another process; add a worker to it with sentitune sweep "
            f"--join {path.stem}, or stop it first: sentitune stop {path.stem}")


def request_sweep_stop(path: str | Path) -> str:
    """Ask a running sweep to stop: every worker's current run stops and saves, and no further run starts."""
    path = Path(path)
    record = read_sweep(path)
    if record["status"] not in (RunStatus.RUNNING, RunStatus.STARTING):
        raise RunError(f"sweep {path.stem} is not running (it is {record['status']})")
    try:
        stop_file(path).touch()
    except OSError as exc:
        raise RunError(f"cannot ask sweep {path.stem} to stop: {exc.strerror or exc} writing in {path.parent}; "
                       "check its permissions") from None
    # A point is named running before its run starts: its stop file reaches it however far it got (a worker
    # checks the sweep's stop file after naming the run, so a stop between runs is never missed).
    for point in record["points"]:
        if point.get("status") == RunStatus.RUNNING and point.get("run_dir") and Path(point["run_dir"]).is_dir():
            ask(point["run_dir"])
    return (f"asked sweep {path.stem} to stop: its current run{'s' if len(record['workers']) > 1 else ''} stop and "
            f"save; resume it with sentitune sweep --resume {path.stem}")


def check_resumable(path: Path) -> dict[str, Any]:
    """The record of a sweep that has runs left to do and is not running; RunError saying why otherwise."""
    record = read_sweep(path)
    if not record.get("study"):
        raise RunError(f"sweep {path.stem} was recorded by an earlier version of sentitune: it shows, but does not "
                       "go on; resume its stopped runs one by one (sentitune resume RUN), or start a new sweep")
    if record["status"] in (RunStatus.RUNNING, RunStatus.STARTING):
        raise RunError(busy(path))
    if all(p.get("status") in DONE for p in record["points"]):
        raise RunError(f"sweep {path.stem} has nothing to resume: every run in it is done; see them with "
                       f"sentitune sweep --show {path.stem}")
    return record


def list_sweeps(root: str | Path) -> list[Path]:
    """Sweep records under the runs folder, newest first."""
    root = Path(root)
    return sorted(root.glob(f"{PREFIX}*.json"), reverse=True) if root.is_dir() else []


def sweep_of(run_dir: str | Path, root: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The sweep (record path, record) that made the run in `run_dir`, if one under `root` did."""
    wanted = Path(run_dir).resolve()
    for path in list_sweeps(root):
        try:
            record = read_object(path)
            if record.get("kind") != "sweep":
                continue
            if record.get("study"):  # its run folders are in the study
                record = read_sweep(path)
            points = record.get("points")
            if isinstance(points, list) and any(isinstance(p, dict) and p.get("run_dir")
                                                and (path.parent / Path(str(p["run_dir"])).name).resolve() == wanted
                                                for p in points):
                return path, record if record.get("study") else read_sweep(path)
        except (CoreError, OSError, TypeError):
            continue  # a damaged record hides nothing else
    return None
