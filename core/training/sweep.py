"""Sweeps: one normal run per setting point, one after another, grouped by a record under the runs folder.

The record (`runs/sweep-<timestamp>.json`) is rewritten atomically as each run starts and ends: the base
settings, what varies, and per point its settings, run folder, status and scores. A killed sweep reads as
interrupted and resumes with the points not yet done (a stopped or interrupted run goes on from its
checkpoint). Points are ranked by validation macro F1 (then accuracy), never by test scores: choosing by
test would make the test split part of the tuning, and its figures would no longer say how the model does on
unseen reviews.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import FIELDS, TrainConfig, parse_value
from core.errors import ConfigError, CoreError, RunError
from core.events import Event
from core.files import read_json, read_object, write_json_atomic
from core.format import number
from core.runs.control import Owner, ask, clear_stop_request
from core.runs.layout import RunStatus
from core.runs.lock import RunLock, is_locked
from core.runs.store import create_run_dir, run_info, selection_score
from core.training.preflight import check_max_length, disk_message, model_config

PREFIX = "sweep-"
DONE = (RunStatus.FINISHED, RunStatus.FAILED)
"""Point states a resumed sweep leaves alone (a failure is a result: its error is in the run)."""
NOT_SWEPT = ("model", "dataset", "dataset_config", "text_columns", "label_column", "max_samples", "seed",
             "val_fraction", "test_fraction", "max_eval_samples", "baseline", "baseline_samples", "report_to",
             "num_processes", "accelerate_config", "device")
"""What a sweep may not vary: the data, its split and how validation is scored must be the same for every
point, or their validation scores would not be comparable (and where runs are logged is not a setting to tune)."""
MAX_POINTS = 1000
"""Runs in one sweep: more is a slip (ten settings of four values is a million runs)."""


# ------------------------------------------------------------------ planning


def parse_grid(items: list[str]) -> dict[str, list[Any] | tuple[float, float]]:
    """`name=a,b,c` (values) or `name=lo:hi` (a range, for --random) per item; ConfigError names each bad one."""
    grid: dict[str, list[Any] | tuple[float, float]] = {}
    errors: dict[str, str] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not raw.strip(" ,"):
            errors[name or "grid"] = f"'{item}' is not name=value,value or name=low:high (e.g. learning_rate=2e-5,5e-5)"
            continue
        if name not in FIELDS:
            hint = parse_value(name, "")[1]
            if "did you mean" not in hint:
                hint += "; a sweep varies settings such as learning_rate, epochs, batch_size, weight_decay, " \
                        "warmup_ratio, max_length"
            errors[name] = f"in '{item}': {hint}"
            continue
        if name in grid or name in errors:
            errors[name] = f"is given twice; put all its values in one --grid {name}=a,b,c"
            continue
        if name in NOT_SWEPT:
            errors[name] = ("a sweep keeps the data, its split and its scoring the same for every run; set it once, "
                            "not per run")
            continue
        if ":" in raw:
            bounds = [parse_value(name, part) for part in raw.split(":", 1)]
            problem = next((p for _, p in bounds if p), None)
            if problem is None and FIELDS[name].type not in ("int", "float"):
                problem = "only numbers can have a range"
            if problem is None and not bounds[0][0] < bounds[1][0]:
                problem = "a range goes from low to high"
            if problem:
                errors[name] = problem
            else:
                grid[name] = (bounds[0][0], bounds[1][0])
            continue
        values = []
        for part in [p.strip() for p in raw.split(",") if p.strip()]:  # a trailing comma (typing on) is no value
            value, problem = parse_value(name, part)
            if problem:
                errors[name] = problem if repr(part) in problem else f"{part!r}: {problem}"
                break
            if value in values:
                errors[name] = f"{part} is in the list twice (a sweep runs each value once)"
                break
            values.append(value)
        else:
            grid[name] = values
    if errors:
        raise ConfigError(errors)
    return grid


def plan_points(grid: dict[str, Any], random_points: int | None = None, seed: int = 42) -> list[dict[str, Any]]:
    """Every combination of the grid's values, or `random_points` points drawn from its values and ranges
    (learning-rate-like ranges spanning 10x or more are drawn evenly on a log scale)."""
    if not grid:
        raise ConfigError({"grid": "say what to vary: --grid learning_rate=2e-5,5e-5"})
    ranges = [name for name, v in grid.items() if isinstance(v, tuple)]
    if random_points is not None and not 1 <= random_points <= MAX_POINTS:
        raise ConfigError({"random": f"--random N takes 1 to {MAX_POINTS} points, not {random_points}"})
    if not random_points:
        if ranges:
            raise ConfigError({ranges[0]: "a range is drawn from with --random N; give values (a,b,c) for a grid"})
        names = list(grid)
        size = math.prod(len(grid[n]) for n in names)
        if size > MAX_POINTS:
            raise ConfigError({"grid": f"{size} combinations is more than a sweep runs ({MAX_POINTS}); give fewer "
                                       "values, or draw some with --random N"})
        return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    rng = random.Random(seed)
    points = []
    for _ in range(random_points):
        point = {}
        for name, values in grid.items():
            if not isinstance(values, tuple):
                point[name] = rng.choice(values)
            elif FIELDS[name].type == "int":
                point[name] = rng.randint(int(values[0]), int(values[1]))
            elif values[0] > 0 and values[1] / values[0] >= 10:
                point[name] = float(f"{math.exp(rng.uniform(math.log(values[0]), math.log(values[1]))):.3g}")
            else:
                point[name] = float(f"{rng.uniform(*values):.3g}")
        points.append(point)
    return points


def point_configs(base: TrainConfig, points: list[dict[str, Any]]) -> list[TrainConfig]:
    """Each point's config; ConfigError for the first point the settings do not allow (before any run)."""
    configs = []
    for point in points:
        try:
            configs.append(TrainConfig.from_dict(point, base=base))
        except ConfigError as exc:
            raise ConfigError({k: f"{v} (in the sweep point {describe(point)})" for k, v in exc.errors.items()}) from None
    return configs


def describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={number(v)}" for k, v in point.items())


# ------------------------------------------------------------------ the record


def create_sweep(base: TrainConfig, grid: dict[str, Any], points: list[dict[str, Any]], runs_root: str | Path,
                 random_points: int | None = None) -> Path:
    """Write a new sweep record (all points pending); returns its path. ConfigError, before anything is
    written, for a point its settings or the model do not allow."""
    configs = point_configs(base, points)
    if any(c.max_length != base.max_length for c in configs):
        limits = model_config(base.model)
        for config, point in zip(configs, points):
            try:
                check_max_length(config, limits)
            except ConfigError as exc:
                raise ConfigError({k: f"{v} (in the sweep point {describe(point)})"
                                   for k, v in exc.errors.items()}) from None
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{PREFIX}{stamp}.json"
    n = 2
    while path.exists():
        path, n = root / f"{PREFIX}{stamp}-{n}.json", n + 1
    write_json_atomic(path, {
        "kind": "sweep", "created": time.time(), "updated": time.time(), "status": "pending", "pid": None,
        "base": base.to_dict(), "grid": {k: list(v) for k, v in grid.items()}, "random": random_points,
        "points": [{"settings": p, "run_dir": None, "status": "pending"} for p in points],
    })
    return path


def read_sweep(path: str | Path) -> dict[str, Any]:
    """A sweep record with its effective status (a running one whose process is gone is interrupted)."""
    path = Path(path)
    record = read_json(path, damaged="the sweep record is damaged: start the sweep again")
    if not isinstance(record, dict) or record.get("kind") != "sweep":
        raise RunError(f"{path.name} is not a sweep record")
    if (problem := _shape_problem(record)) is not None:
        raise RunError(f"sweep record {path.name} is damaged ({problem}); start the sweep again")
    if record.get("status") in (RunStatus.RUNNING, RunStatus.STARTING) and not is_locked(path=lock_file(path)):
        record["status"] = RunStatus.INTERRUPTED
        for point in record["points"]:
            if point.get("status") == RunStatus.RUNNING:
                point["status"] = RunStatus.INTERRUPTED
    for point in record["points"]:  # the scores as the run folder has them now
        if point.get("run_dir"):  # stored by name: the runs folder may be moved, or opened from elsewhere
            point["run_dir"] = str(path.parent / Path(point["run_dir"]).name)
        point.pop("missing", None)
        if point.get("run_dir") and Path(point["run_dir"]).is_dir():
            point.update(_scores(point["run_dir"]))
        elif point.get("run_dir"):
            point["missing"] = True  # deleted or moved: the figures are the record's own, the model is gone
    return record


def _scores(run_dir: str | Path) -> dict[str, float | None]:
    """Validation and test figures as the run folder has them (stored in the record too, as each run ends, so
    the record says how its runs did even without them)."""
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
    return None


def ranked(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The points that have a validation F1, best first: by validation macro F1 (SELECTION_METRIC; a run that
    calls every review one class cannot top it), then validation accuracy. Equal points keep their order."""
    scored = [p for p in record["points"] if isinstance(p.get("val_f1"), (int, float))]
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


def resolve_sweep(ref: str | Path, root: str | Path = "runs") -> Path:
    """The record of a sweep given by path or by name (`sweep-20261127-101500`) under the runs folder."""
    path = Path(ref).expanduser()
    for candidate in (path, Path(root) / path.name, Path(root) / f"{path.name}.json",
                      Path(root) / f"{PREFIX}{path.name}.json"):  # its timestamp alone will do
        if candidate.is_file():
            return candidate
    raise RunError(f"no sweep {ref} in {root}; list them with: sentitune sweep --show --output-dir {root}")


def is_sweep_ref(ref: str, root: str | Path = "runs") -> bool:
    """A sweep's record named by path, by name, or by its timestamp alone (when no run folder is called that)."""
    name = Path(ref).name
    return name.startswith(PREFIX) or (not (Path(root) / name).exists() and (Path(root) / f"{PREFIX}{name}.json").is_file())


def stop_file(path: Path) -> Path:
    return path.with_suffix(".stop")


def lock_file(path: Path) -> Path:
    """Held by the process that runs the sweep (passed down to a background one): one copy at a time."""
    return path.with_name(f".{path.stem}.lock")


def _busy(path: Path) -> str:
    return f"sweep {path.stem} is already running in another process; stop it first: sentitune stop {path.stem}"


# ------------------------------------------------------------------ running


def run_sweep(path: str | Path, on_event: Callable[[Event], None] | None = None,
              on_point: Callable[[int, int, dict[str, Any]], None] | None = None,
              stop_event: threading.Event | None = None, lock_fd: int | None = None) -> dict[str, Any]:
    """Run (or resume) every point not done, one at a time; returns the final record.

    `on_point(k, n, point)` is told as point k of n starts (its `run_dir` set: new, or resumed). A stop (the event, `sentitune stop SWEEP`) ends
    the current run as stopped (saved) and leaves the rest pending. `lock_fd`: the sweep's lock, taken by the
    process that started this one in the background; otherwise it is taken here (RunError if held).
    """
    path = Path(path)
    adopted = lock_fd is not None
    lock = RunLock.adopt(lock_file(path), lock_fd) if adopted else RunLock(path=lock_file(path)).acquire(_busy(path))
    try:
        if not adopted:  # a background sweep's starter cleared it: a stop asked while it started must stay
            _clear_stop(path)  # a stop asked of an earlier go of this sweep
        return _run_points(path, stop_event or threading.Event(), on_event, on_point)
    finally:
        lock.release()


def _clear_stop(path: Path) -> None:
    try:
        stop_file(path).unlink(missing_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write in {path.parent}: {exc.strerror or exc}; check its permissions") from None


def _run_points(path: Path, stop_event: threading.Event, on_event, on_point) -> dict[str, Any]:
    from core.training.train import resume, train

    record = read_sweep(path)
    base = TrainConfig.from_dict(record["base"])
    runs_root = path.parent
    points = record["points"]
    _save(path, record, status=RunStatus.RUNNING, pid=os.getpid())
    try:
        for k, point in enumerate(points, start=1):
            if point.get("status") in DONE:
                continue
            if stop_event.is_set() or stop_file(path).exists():
                break
            earlier = Path(point["run_dir"]) if point.get("run_dir") else None
            resumable = earlier is not None and _has_checkpoint(earlier)
            if not resumable:
                config = TrainConfig.from_dict(point["settings"], base=base)
                try:
                    point["run_dir"] = str(create_run_dir(runs_root, config.model, config.dataset))
                except OSError as exc:
                    raise RunError(disk_message(exc, runs_root)) from None
            if on_point is not None:  # its run folder is known: a resumed one has its history there
                on_point(k, len(points), point)
            if resumable:
                clear_stop_request(earlier)  # before the record names it: a stop asked from now on reaches it
            point["status"] = RunStatus.RUNNING
            _save(path, record)
            if stop_file(path).exists():  # asked between the check above and the record naming this run
                point["status"] = RunStatus.STOPPED if resumable else "pending"
                if not resumable:
                    _remove_unused(Path(point.pop("run_dir")))
                    point["run_dir"] = None
                _save(path, record)
                break
            try:
                if resumable:
                    result = resume(earlier, on_event, stop_event, owner=Owner.SWEEP, clear_stop_request=False)
                else:
                    result = train(config, runs_root, on_event, stop_event, run_dir=point["run_dir"],
                                   owner=Owner.SWEEP)
                point["status"] = str(result.status)
            except CoreError as exc:  # this point failed (out of memory, NaN loss...): the others may not
                point["status"], point["error"] = RunStatus.FAILED, str(exc)
            point.update(_scores(point["run_dir"]))
            _save(path, record)
            if point["status"] == RunStatus.STOPPED:
                break
    except BaseException:
        try:
            _save(path, record, status=RunStatus.FAILED, pid=None)
        except RunError:
            pass  # the first error says more; with the lock released the record reads as interrupted
        raise
    done = all(p.get("status") in DONE for p in points)
    _save(path, record, status=RunStatus.FINISHED if done else RunStatus.STOPPED, pid=None)
    try:
        stop_file(path).unlink(missing_ok=True)
    except OSError:
        pass  # a stop file left behind is removed when the sweep is resumed
    return read_sweep(path)


def _remove_unused(run_dir: Path) -> None:
    """The folder made for a run that never started (it is empty)."""
    try:
        run_dir.rmdir()
    except OSError:
        pass


def _has_checkpoint(run_dir: Path) -> bool:
    from core.runs.checkpoints import last_complete_checkpoint

    try:
        return last_complete_checkpoint(run_dir) is not None
    except CoreError:
        return False


def _save(path: Path, record: dict[str, Any], **changes: Any) -> None:
    """Rewrite the record atomically; RunError (disk full, read-only) leaves the last one whole."""
    record.update(changes, updated=time.time())
    stored = {**record, "points": [{k: (Path(v).name if k == "run_dir" and v else v) for k, v in p.items()
                                    if k != "missing"} for p in record["points"]]}  # missing: as read, not kept
    try:
        write_json_atomic(path, stored)
    except OSError as exc:
        raise RunError(f"cannot write the sweep record: {disk_message(exc, path.parent)}") from None


def request_sweep_stop(path: str | Path) -> str:
    """Ask a running sweep to stop: its current run stops and saves, and no further run starts."""
    path = Path(path)
    record = read_sweep(path)
    if record["status"] not in (RunStatus.RUNNING, RunStatus.STARTING):
        raise RunError(f"sweep {path.stem} is not running (it is {record['status']})")
    try:
        stop_file(path).touch()
    except OSError as exc:
        raise RunError(f"cannot ask sweep {path.stem} to stop: {exc.strerror or exc} writing in {path.parent}; "
                       "check its permissions") from None
    # The record names a run as running before the run starts: its stop file reaches it however far it got
    # (the sweep checks its own stop file after naming the run, so a stop between runs is never missed).
    current = next((p for p in record["points"] if p.get("status") == RunStatus.RUNNING and p.get("run_dir")), None)
    if current is not None and Path(current["run_dir"]).is_dir():
        ask(current["run_dir"])
    return f"asked sweep {path.stem} to stop: its current run stops and saves; resume it with sentitune sweep --resume {path.stem}"


def check_resumable(path: Path) -> dict[str, Any]:
    """The record of a sweep that has runs left to do and is not running; RunError saying why otherwise."""
    record = read_sweep(path)
    if record["status"] in (RunStatus.RUNNING, RunStatus.STARTING):
        raise RunError(_busy(path))
    if all(p.get("status") in DONE for p in record["points"]):
        raise RunError(f"sweep {path.stem} has nothing to resume: every run in it is done; see them with "
                       f"sentitune sweep --show {path.stem}")
    return record


LOCK_FD_VARIABLE = "SENTITUNE_SWEEP_LOCK_FD"
"""Tells a background sweep the descriptor of the lock its starter took for it."""


def start_sweep_detached(path: str | Path) -> Path:
    """Run the sweep in its own process and session (it survives the SSH session ending); returns its log.
    RunError when it is already running, or the process cannot be started (the record is left as it was)."""
    path = Path(path)
    log_path = path.with_suffix(".log")
    record = check_resumable(path)
    lock = RunLock(path=lock_file(path)).acquire(_busy(path))
    before = record["status"]
    try:
        _clear_stop(path)  # here, not in the child: a stop asked while it starts must reach it
        _save(path, record, status=RunStatus.STARTING)
        with open(log_path, "ab") as out:
            subprocess.Popen(
                [sys.executable, "-m", "core.cli", "sweep", "--resume", str(path), "--output-dir", str(path.parent)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=os.getcwd(), pass_fds=(lock.fd,),
                env={**os.environ, "PYTHONUNBUFFERED": "1", LOCK_FD_VARIABLE: str(lock.fd)},
            )
    except (OSError, RunError) as exc:
        try:
            _save(path, record, status=before)
        except RunError:
            pass  # the lock is released below, so the record reads as interrupted anyway
        lock.release()
        if isinstance(exc, RunError):
            raise
        raise RunError(f"cannot start the sweep in the background ({log_path}: {exc.strerror or exc}); "
                       "check the runs folder is writable, or run it without --detach") from None
    lock.hand_over()  # the child holds it now; closing ours does not unlock it
    return log_path


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
            points = record.get("points") if record.get("kind") == "sweep" else None
            if isinstance(points, list) and any(isinstance(p, dict) and p.get("run_dir")
                                                and (path.parent / Path(str(p["run_dir"])).name).resolve() == wanted
                                                for p in points):
                return path, read_sweep(path)
        except (CoreError, OSError, TypeError):
            continue  # a damaged record hides nothing else
    return None
