"""A sweep's worker: takes the sweep's points one at a time from its study and trains each as a normal run.

Several workers (processes, on one machine or several sharing the runs folder) can work on one sweep at once:
the study hands each queued point to one of them. A worker first goes on with a point another worker left
(stopped, or killed: its lock is free while its trial still runs), from its last checkpoint when it has one;
then takes the next queued point. With pruning, each validation score is reported to the study, and a point the
pruner finds clearly behind the others at the same quarter epoch is stopped (saved, as a stop would) and ends `pruned`.
The decision is made here, in the one process that follows the run's events, and reaches the run as a stop
does: a several-process run acts on it at the same step on every rank.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import TrainConfig
from core.errors import CoreError, RunError
from core.events import EvalCompleted, Event
from core.experiments import study as studies
from core.experiments.plan import grid_from_json
from core.experiments.record import (
    PRUNED,
    busy,
    journal_file,
    live_workers,
    point_lock,
    point_scores,
    read_sweep,
    stop_file,
    worker_lock,
)
from core.runs.control import Owner, ask, clear_stop_request
from core.runs.layout import RunStatus
from core.runs.lock import RunLock
from core.runs.store import create_run_dir, selection_score, write_status
from core.training.gpus import GpuBusyError
from core.training.preflight import disk_message

LOCK_FD_VARIABLE = "SENTITUNE_SWEEP_LOCK_FD"
"""Tells a background worker the descriptor of the worker lock its starter took for it."""
WORKER_VARIABLE = "SENTITUNE_SWEEP_WORKER"
"""And the name of that lock."""


def worker_name() -> str:
    """The machine and a token: a worker started in the background is named before its process exists."""
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


def run_sweep(path: str | Path, on_event: Callable[[Event], None] | None = None,
              on_point: Callable[[int, int, dict[str, Any]], None] | None = None,
              stop_event: threading.Event | None = None, lock_fd: int | None = None,
              name: str | None = None, join: bool = False,
              on_done: Callable[[int, int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Work on the sweep until no point is left (or it is stopped); returns its final record.

    `on_point(k, n, point)` is told as point k of n starts (its `run_dir` set: new, or resumed), `on_done(k, n,
    point)` as it ends (with its `status`, and `pruned`: why, when it was). A stop (the event,
    `sentitune stop SWEEP`) ends the current run as stopped (saved) and leaves the rest pending. `lock_fd`: this
    worker's lock, taken by the process that started it in the background. Without `join`, RunError when the
    sweep already has a live worker (one copy at a time, unless asked to join)."""
    path = Path(path)
    record = read_sweep(path)
    if not record.get("study"):
        raise RunError(f"sweep {path.stem} was recorded by an earlier version of sentitune: it shows, but does not "
                       "go on; start a new sweep")
    adopted = lock_fd is not None
    name = name or worker_name()
    others = [w for w in live_workers(path) if w != name]
    if others and not join:
        raise RunError(busy(path))
    if others and stop_file(path).exists():
        raise RunError(f"sweep {path.stem} is stopping; resume it once it has: sentitune sweep --resume {path.stem}")
    try:
        worker_lock(path, name).parent.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write in {path.parent}: {disk_message(exc, path.parent)}") from None
    lock = RunLock.adopt(worker_lock(path, name), lock_fd) if adopted else RunLock(path=worker_lock(path, name)).acquire()
    lock.record_pid()  # the lock file says which process works (for people reading it; the lock is the truth)
    try:
        if not adopted and not others:  # a (re)start: a stop asked of an earlier go is done with
            clear_stop(path)
        _work(path, record, stop_event or threading.Event(), on_event, on_point, on_done, name)
    finally:
        lock.release()
    return read_sweep(path)  # with this worker's lock free: finished, stopped, or running on in other workers


def clear_stop(path: Path) -> None:
    try:
        stop_file(path).unlink(missing_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write in {path.parent}: {exc.strerror or exc}; check its permissions") from None


def _stopping(path: Path, stop_event: threading.Event) -> bool:
    return stop_event.is_set() or stop_file(path).exists()


def _work(path: Path, record: dict[str, Any], stop_event: threading.Event, on_event, on_point, on_done,
          name: str) -> None:
    study = studies.load(journal_file(path), record)
    while not _stopping(path, stop_event):
        claimed = _claim(study, path)
        if claimed is None:
            break
        trial, k, claim = claimed
        study._storage.set_trial_user_attr(trial._trial_id, "worker", name)  # who trains it (the last one, if several)
        try:
            status = _run_point(path, record, study, trial, k, stop_event, on_event, on_point)
        finally:
            claim.release()
        if on_done is not None:
            attrs = study._storage.get_trial(trial._trial_id).user_attrs
            on_done(k + 1, len(record["points"]), {"settings": attrs.get("settings", {}), "status": str(status),
                                                   "run_dir": attrs.get("run_dir"), "pruned": attrs.get("pruned")})
        if status == RunStatus.STOPPED:
            break
    if stop_event.is_set():  # Ctrl+C, the app's stop: the sweep reads as stopped, and its other workers stop too
        try:
            stop_file(path).touch()
        except OSError:
            pass


class _PointStop(threading.Event):
    """The stop a point's run watches: set by the sweep's own stop (Ctrl+C, the app's Stop), which it takes over
    (as a run consumes a stop it acted on, so a second press can cut its testing short), or by the run's stop file
    (`sentitune stop RUN`, or the pruner), which stops this run and not the sweep."""

    def __init__(self, sweep: threading.Event) -> None:
        super().__init__()
        self.sweep, self.by_sweep = sweep, False

    def is_set(self) -> bool:
        if self.sweep.is_set():
            self.sweep.clear()
            self.by_sweep = True
            super().set()
        return super().is_set()


def _try_lock(lock_path: Path) -> RunLock | None:
    try:
        return RunLock(path=lock_path).acquire()
    except RunError:
        return None


def _claim(study, path: Path):
    """(trial, point index, its lock): a point left running by a worker that is gone, else the next queued one;
    None when no point is left."""
    optuna = studies._optuna()
    from optuna.trial import Trial, TrialState

    storage = study._storage
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not isinstance(frozen.user_attrs.get("point"), int):
            continue
        claim = _try_lock(point_lock(path, frozen.number))
        if claim is None:
            continue
        if storage.get_trial(frozen._trial_id).state != TrialState.RUNNING:  # finished meanwhile
            claim.release()
            continue
        return Trial(study, frozen._trial_id), frozen.user_attrs["point"], claim
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial = study.ask()
        if not isinstance(trial.user_attrs.get("point"), int):  # another worker took the last queued point
            storage.set_trial_user_attr(trial._trial_id, "extra", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return None
        claim = _try_lock(point_lock(path, trial.number))
        if claim is not None:
            return trial, trial.user_attrs["point"], claim
        # a worker looking for left points took it between our ask and our lock: it is theirs
    return None


def _run_point(path: Path, record: dict[str, Any], study, trial, k: int,
               stop_event: threading.Event, on_event, on_point) -> str:
    from core.experiments.plan import describe
    from core.training.train import resume, train

    storage = study._storage
    grid = grid_from_json(record.get("grid"))
    base = TrainConfig.from_dict(record["base"])
    planned = record["points"][k]["settings"]
    study.sampler = studies.sampler(record, trial.number)  # TPE draws at each suggest: seeded for this point
    try:
        settings = {name: studies.suggest(trial, name, spec) for name, spec in grid.items()}
        settings = {**settings, **planned}  # a planned point's values are its own, whatever the grid says now
        config = TrainConfig.from_dict(settings, base=base)
        evals = 1
        if record.get("prune") and not config.eval_steps:
            config, evals = _evaluated_often(config, _training_rows(path, base)), studies.PRUNE_EVALS_PER_EPOCH
    except (CoreError, ValueError) as exc:  # a sampled value the settings refuse: this point fails, not the sweep
        storage.set_trial_user_attr(trial._trial_id, "error", f"{exc} (in the sweep point {describe(planned)})")
        study.tell(trial, state=studies._optuna().trial.TrialState.FAIL)
        return RunStatus.FAILED
    storage.set_trial_user_attr(trial._trial_id, "settings", settings)
    attrs = storage.get_trial(trial._trial_id).user_attrs
    earlier = path.parent / attrs["run_dir"] if isinstance(attrs.get("run_dir"), str) else None
    resumable = earlier is not None and _has_checkpoint(earlier)
    if resumable:
        run_dir = earlier
        clear_stop_request(earlier)  # before it is named running: a stop asked from now on reaches it
    else:
        try:
            run_dir = create_run_dir(path.parent, config.model, config.dataset)
        except OSError as exc:
            raise RunError(disk_message(exc, path.parent)) from None
        storage.set_trial_user_attr(trial._trial_id, "run_dir", run_dir.name)
    if on_point is not None:  # its run folder is known: a resumed one has its history there
        on_point(k + 1, len(record["points"]), {"settings": settings, "run_dir": str(run_dir), "trial": trial.number})
    storage.set_trial_user_attr(trial._trial_id, "status", RunStatus.RUNNING)
    if _stopping(path, stop_event):  # asked between the last check and the point being named running
        if not resumable:  # nothing of it was trained: it stays queued for the next go
            _remove_unused(run_dir)
            storage.set_trial_user_attr(trial._trial_id, "run_dir", None)
        storage.set_trial_user_attr(trial._trial_id, "status", RunStatus.STOPPED if resumable else "pending")
        return RunStatus.STOPPED
    pruned: dict[str, Any] = {}

    def events(event: Event) -> None:
        if on_event is not None:
            on_event(event)
        if isinstance(event, EvalCompleted) and event.split == "validation" and not pruned:
            value, step = selection_score(event.metrics), studies.report_step(event.epoch, evals)
            if step not in storage.get_trial(trial._trial_id).intermediate_values:
                trial.report(value, step)
            if record.get("prune") and trial.should_prune():
                pruned.update(epoch=round(event.epoch, 2), value=value, median=_median(study, step))
                try:
                    ask(run_dir)
                except RunError:
                    pruned.clear()  # cannot stop it: it trains on, and is judged at the next evaluation

    point_stop = _PointStop(stop_event)
    try:
        if resumable:
            result = resume(run_dir, events, point_stop, owner=Owner.SWEEP, clear_stop_request=False)
        else:
            result = train(config, path.parent, events, point_stop, run_dir=run_dir, owner=Owner.SWEEP)
        status = str(result.status)
    except GpuBusyError:  # this worker's GPU has no room (a shared box): the point waits for another worker
        if not resumable:
            shutil.rmtree(run_dir, ignore_errors=True)
            storage.set_trial_user_attr(trial._trial_id, "run_dir", None)
        storage.set_trial_user_attr(trial._trial_id, "status", RunStatus.STOPPED if resumable else "pending")
        raise
    except CoreError as exc:  # this point failed (out of memory, NaN loss...): the others may not
        status = RunStatus.FAILED
        storage.set_trial_user_attr(trial._trial_id, "error", str(exc))
    scores = point_scores(run_dir)
    storage.set_trial_user_attr(trial._trial_id, "scores", scores)
    if pruned and status == RunStatus.STOPPED:
        note = (f"pruned after epoch {pruned['epoch']:g}: validation macro F1 {pruned['value']:.4f}, below the "
                f"median of the sweep's other runs at that point ({pruned['median']:.4f})")
        _record_pruned(run_dir, note)
        storage.set_trial_user_attr(trial._trial_id, "pruned", note)
        storage.set_trial_user_attr(trial._trial_id, "status", PRUNED)
        study.tell(trial, state=studies._optuna().trial.TrialState.PRUNED)
        return PRUNED
    storage.set_trial_user_attr(trial._trial_id, "status", status)
    if status == RunStatus.FINISHED:
        value = scores.get("val_f1_macro") if studies.is_finite(scores.get("val_f1_macro")) else scores.get("val_f1")
        if studies.is_finite(value):
            study.tell(trial, float(value))
        else:  # trained, but never evaluated (no validation split): nothing to rank it by
            study.tell(trial, state=studies._optuna().trial.TrialState.FAIL)
    elif status == RunStatus.FAILED:
        study.tell(trial, state=studies._optuna().trial.TrialState.FAIL)
    # stopped: the trial stays running, its lock free once this returns; a resume goes on with it
    if point_stop.by_sweep:
        stop_event.set()  # the sweep's own stop: this worker takes no further point
    return status


_ROWS: dict[str, int] = {}


def _training_rows(path: Path, base: TrainConfig) -> int:
    """The sweep's training reviews (the same for every point: a sweep keeps the data and its split), counted once
    per worker."""
    key = str(path)
    if key not in _ROWS:
        from core.data.clean import prepare

        _ROWS[key] = len(prepare(base).splits["train"])
    return _ROWS[key]


def _evaluated_often(config: TrainConfig, training_rows: int) -> TrainConfig:
    """A pruned sweep's point, evaluated (and checkpointed) PRUNE_EVALS_PER_EPOCH times an epoch: its eval_steps
    from its own steps per epoch, its early-stopping patience kept in epochs."""
    import math

    per_step = config.batch_size * config.gradient_accumulation * config.num_processes
    steps = max(1, math.ceil(training_rows / per_step))
    evals = studies.PRUNE_EVALS_PER_EPOCH
    return config.replace(eval_steps=max(1, math.ceil(steps / evals)),
                          early_stopping_patience=config.early_stopping_patience * evals)


def _median(study, step: int) -> float:
    import statistics

    from optuna.trial import TrialState

    values = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if step in t.intermediate_values]
    return statistics.median(values) if values else float("nan")


def _record_pruned(run_dir: Path, note: str) -> None:
    from core.files import read_object

    try:
        status = read_object(run_dir / "status.json")
        extra = {k: v for k, v in status.items() if k not in ("status", "error", "updated", "pid")}
        write_status(run_dir, PRUNED, note, **extra)  # as a stop records its note
    except (CoreError, OSError):
        pass  # the study says it was pruned; the run folder says stopped


def _remove_unused(run_dir: Path) -> None:
    """The folder made for a run that never started (empty, but for a stop asked of it)."""
    from core.runs.layout import STOP_FILE

    try:
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        run_dir.rmdir()
    except OSError:
        pass


def _has_checkpoint(run_dir: Path) -> bool:
    from core.runs.checkpoints import last_complete_checkpoint

    try:
        return last_complete_checkpoint(run_dir) is not None
    except CoreError:
        return False
