"""Run the whole fine-tuning job: data -> tokenize -> baseline -> train -> test -> save, emitting events.

New runs and resumed ones take one path: a RunSetup, checked and loaded, then a session in the run folder.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.config import TrainConfig
from core.errors import CoreError, OutOfMemoryError, RunError, TrainingError
from core.events import Event, StageChanged, TrainingFailed, TrainingStopped
from core.files import write_json_atomic
from core.runs import layout
from core.runs.checkpoints import checkpoint_step
from core.runs.control import Owner, check_not_held, claim
from core.runs.layout import STOP_FILE, RunStatus
from core.runs.store import create_run_dir, write_status
from core.training.job import Job, TrainResult
from core.training.logs import capture_library_logs, log
from core.training.oom import half_batch, is_oom, oom_message, release_failure
from core.training.preflight import disk_message, preflight
from core.training.setup import Emitter, Loaded, RunSetup, config_record, load
from core.training.stopping import StoppedEarly, StopSignal


def train(
    config: TrainConfig,
    runs_root: str | Path = "runs",
    on_event: Callable[[Event], None] | None = None,
    stop_event: threading.Event | None = None,
    run_dir: str | Path | None = None,
    preface: list[Event] | tuple = (),
    owner: str = Owner.APP,
) -> TrainResult:
    """Fine-tune `config.model` on `config.dataset`; raises CoreError for bad input (no run folder made).

    `run_dir`, when given, is an empty folder made beforehand (a detached run's parent makes it so it
    can print the path at once); otherwise a new folder is made under `runs_root`. `owner` is recorded in
    status.json: it says how a stop from another process reaches this one (core.runs.control).
    """
    return _start(config, Path(runs_root), on_event, stop_event, Path(run_dir) if run_dir else None, None, preface,
                  owner)


def resume(
    run_dir: str | Path,
    on_event: Callable[[Event], None] | None = None,
    stop_event: threading.Event | None = None,
    owner: str = Owner.APP,
    clear_stop_request: bool = True,
) -> TrainResult:
    """Continue a stopped, failed or interrupted run from its last complete checkpoint; RunError while another
    process holds it. The stop request an earlier process left is cleared, unless the caller has done that
    already and a stop asked since must stand (`clear_stop_request=False`: a sweep)."""
    from core.runs.checkpoints import last_complete_checkpoint
    from core.runs.store import Run

    run = Run(run_dir)
    check_not_held(run.path)  # said before anything else about the run
    checkpoint = last_complete_checkpoint(run.path)
    return _start(run.train_config(), run.path.parent, on_event, stop_event, run.path, checkpoint, owner=owner,
                  clear_stop=clear_stop_request)


def train_auto_batch(
    config: TrainConfig,
    runs_root: str | Path = "runs",
    on_event: Callable[[Event], None] | None = None,
    stop_event: threading.Event | None = None,
    run_dir: str | Path | None = None,
    owner: str = Owner.APP,
) -> TrainResult:
    """`train`, retried in a new run with half the batch and twice the accumulation after each CUDA OOM."""
    preface: list[Event] = []
    while True:
        try:
            return train(config, runs_root, on_event, stop_event, run_dir, preface=preface, owner=owner)
        except OutOfMemoryError as exc:
            if exc.retry_config is None:
                raise
            old, config, failed, run_dir = config, exc.retry_config, exc.run_dir, None
            release_failure(exc)
            if config.eval_batch_size != old.eval_batch_size:
                what = (f"eval_batch_size {old.eval_batch_size} ran out of GPU memory; retrying with "
                        f"eval_batch_size {config.eval_batch_size}")
            else:
                what = (f"batch_size {old.batch_size} ran out of GPU memory; retrying with batch_size "
                        f"{config.batch_size} x gradient_accumulation {config.gradient_accumulation} (same effective batch)")
            preface = [StageChanged("retry", what)]
            if failed is not None:
                run_dir = _retry_folder(failed, config, runs_root)


def _retry_folder(failed: Path, config: TrainConfig, runs_root: str | Path) -> Path | None:
    """A new folder for an out-of-memory retry; the failed run's status points to it, so `attach` follows on."""
    from core.runs.store import read_run_file

    try:
        run_dir = create_run_dir(runs_root, config.model, config.dataset)
        write_json_atomic(run_dir / layout.CONFIG, {"config": config.to_dict(), "created": time.time()})
        status = read_run_file(failed / layout.STATUS)
        write_status(failed, RunStatus.FAILED, status.get("error"), retry_run=str(run_dir))
    except (CoreError, OSError):
        return None  # the retry still runs, in a folder train() makes
    return run_dir


def _start(config: TrainConfig, runs_root: Path, on_event, stop_event, run_dir: Path | None,
           checkpoint: Path | None, preface: list[Event] | tuple = (), owner: str = Owner.APP,
           clear_stop: bool = True) -> TrainResult:
    """The one path of new and resumed runs: capture library logs, set up, run, close the events file."""
    from core.training.distributed import is_main

    emit = Emitter(on_event, enabled=is_main())
    for event in preface:
        emit(event)
    with capture_library_logs() as handler:
        stop = StopSignal(stop_event, run_dir / STOP_FILE if run_dir is not None else None)
        try:
            return _guarded(RunSetup(config, runs_root, run_dir, checkpoint, emit, stop, handler, owner), clear_stop)
        finally:
            emit.close()


def _guarded(setup: RunSetup, clear_stop: bool = True) -> TrainResult:
    """Hold the run's lock; a stop or bad input before the session starts still leaves a clear record."""
    from core.training.distributed import is_main

    lock, before = None, None
    folder = _NewFolder(setup)
    setup = dataclasses.replace(setup, on_wait=folder.waiting)
    if setup.run_dir is not None and is_main():  # rank 0 holds the run for every rank (or its supervisor does)
        lock = claim(setup.run_dir, resuming=setup.resuming and clear_stop)  # RunError: a second writer
        before = _status_record(setup.run_dir) if setup.resuming else None
        _record_status(setup.run_dir, RunStatus.STARTING, None, owner=setup.owner)
    run_dir = setup.run_dir
    try:
        if not setup.resuming:  # before any data or weights load (a resumed run checked this when it began)
            with setup.phases("checks"):
                preflight(setup.config, setup.runs_root if run_dir is None else None)
        loaded = load(setup)
        if run_dir is not None:
            before = None  # from here on the run's own session records how it ends
            return _in_folder(setup, loaded)
        return _in_folder(dataclasses.replace(setup, run_dir=folder.make()), loaded, fresh=True)
    except StoppedEarly:  # while loading the data or the model
        run_dir = run_dir or folder.kept()  # a new run's folder made while it waited for a GPU
        if run_dir is not None and is_main():
            setup.emit.open(run_dir / layout.EVENTS)
            if before is not None:  # a resume stopped before it trained: the run is as it was
                _restore_status(run_dir, before)
            else:
                _record_status(run_dir, RunStatus.STOPPED, "stopped before training began; nothing was saved")
        return _stopped_early(setup.emit, run_dir, setup.checkpoint)
    except CoreError as exc:
        run_dir = run_dir or folder.kept()
        if run_dir is not None and is_main() and before is not None:
            _restore_status(run_dir, before)  # a resume refused (changed data...) loses nothing the run had
        elif run_dir is not None and not setup.resuming and not isinstance(exc, TrainingError) and is_main():
            # A folder made beforehand (detached start) records why the run never began.
            setup.emit.open(run_dir / layout.EVENTS)
            _record_status(run_dir, RunStatus.FAILED, str(exc))
            setup.emit(TrainingFailed(run_dir=str(run_dir), title=exc.title, message=str(exc), kind="bad_input"))
        raise
    finally:
        folder.release()
        if lock is not None:
            lock.release()


class _NewFolder:
    """A new run's folder: made once its data and model have loaded (bad input leaves none behind), or earlier
    when the run has to wait for a GPU, so that `sentitune runs` lists it as waiting and it can be stopped."""

    def __init__(self, setup: RunSetup) -> None:
        self.setup = setup
        self.path: Path | None = None
        self._lock = None

    def make(self) -> Path:
        if self.path is None:
            setup = self.setup
            try:
                path = create_run_dir(setup.runs_root, setup.config.model, setup.config.dataset)
            except OSError as exc:
                raise RunError(disk_message(exc, setup.runs_root)) from None
            self._lock = claim(path)
            setup.stop.stop_file = path / STOP_FILE
            self.path = path
        return self.path

    def waiting(self, line: str) -> None:
        """The run waits for a GPU: its folder says so (`waiting`, with the line of who holds the memory)."""
        from core.training.distributed import is_main

        if not is_main():
            return
        target = self.setup.run_dir or self.make()
        try:
            if not (target / layout.CONFIG).exists():
                write_json_atomic(target / layout.CONFIG, {"config": self.setup.config.to_dict(),
                                                           "created": time.time()})
            self.setup.emit.open(target / layout.EVENTS)
        except OSError as exc:
            log.error("could not record the wait in %s: %s", target, exc)
        _record_status(target, RunStatus.WAITING, line, owner=self.setup.owner)

    def kept(self) -> Path | None:
        """The folder made early, if it is still there (a run folder that could not be written is removed)."""
        return self.path if self.path is not None and self.path.is_dir() else None

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _status_record(run_dir: Path) -> dict | None:
    """The status a resume found, to put back if it ends without training: when the process that started this
    one in the background already marked the run `starting`, the status it found (`before`)."""
    from core.runs.store import read_run_file

    try:
        record = read_run_file(run_dir / layout.STATUS)
    except CoreError:
        return None
    before = record.get("before")
    return before if record.get("status") == RunStatus.STARTING and isinstance(before, dict) else record


def _restore_status(run_dir: Path, before: dict) -> None:
    """Put back the status a resume found (its process ends without having changed the run)."""
    try:
        write_json_atomic(run_dir / layout.STATUS, {**before, "updated": time.time()})
    except OSError as exc:
        log.error("could not restore the status of %s: %s", run_dir, exc)


def _stopped_early(emit: Emitter, run_dir: Path | None, checkpoint: Path | None) -> TrainResult:
    step = checkpoint_step(checkpoint) if checkpoint else 0
    emit(TrainingStopped(run_dir=str(run_dir or ""), step=step, test=None, saved=False))
    return TrainResult(run_dir, RunStatus.STOPPED, None)


def _in_folder(setup: RunSetup, loaded: Loaded, fresh: bool = False) -> TrainResult:
    """Open the run folder's files, then run the session; every failure from here on is recorded there."""
    from core.training.distributed import init, is_main, rank, world_size

    run_dir, main = setup.run_dir, is_main()
    try:
        with setup.phases("setup"):
            setup.log.attach(run_dir / (layout.TRAIN_LOG if main else layout.rank_log(rank())))
            setup.emit.open(run_dir / layout.EVENTS)
            if main:
                write_status(run_dir, RunStatus.RUNNING, owner=setup.owner)
            if not setup.resuming and main:
                write_json_atomic(run_dir / layout.CONFIG, config_record(setup, loaded, world_size()))
    except OSError as exc:
        if fresh:  # nothing of the run was written: leave no half-made folder behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise RunError(disk_message(exc, run_dir.parent)) from None
    with setup.phases("setup"):
        init(loaded.device)
        job = Job(setup, loaded)
    del loaded  # the job holds the model now, and lets go of it when it ends
    try:
        return job.run()
    except StoppedEarly:  # tokenizing or scoring the baseline
        if main:
            if job.metrics.get("baseline"):
                _record_metrics(run_dir, job.metrics)  # what the run has: the untuned model's score
            note = ("stopped before training resumed; the run keeps what it had" if setup.resuming
                    else "stopped before training began; no model was saved")
            _record_status(run_dir, RunStatus.STOPPED, note)
        return _stopped_early(setup.emit, run_dir, setup.checkpoint)
    except KeyboardInterrupt:  # a second Ctrl+C: no time to save, but the folder says what happened
        if main:
            _record_status(run_dir, RunStatus.FAILED, "aborted by a second Ctrl+C; resume from the last checkpoint "
                                                      "(sentitune resume RUN) if one was written")
        raise
    except Exception as exc:  # every failure after the folder exists is recorded in it
        _record_failure(setup, exc, job.evaluating)
    finally:
        job.release()


def _record_failure(setup: RunSetup, exc: Exception, evaluating: bool):
    """Record a failure in the run folder and the events, then raise it as a TrainingError (OOM: with a retry)."""
    from core.training.distributed import is_main, rank

    config, run_dir = setup.config, setup.run_dir
    message = _failure_message(exc, config, run_dir, evaluating)
    log.error("run failed: %s", message, exc_info=not isinstance(exc, CoreError))
    if is_main():
        _record_status(run_dir, RunStatus.FAILED, message)
    else:  # the launcher's supervisor reports the first rank that failed
        try:
            write_json_atomic(run_dir / layout.rank_failure(rank()), {"rank": rank(), "message": message})
        except OSError:
            pass
    oom = is_oom(exc)
    title = OutOfMemoryError.title if oom else TrainingError.title
    kind = ("oom_eval" if evaluating else "oom") if oom else "error"
    setup.emit(TrainingFailed(run_dir=str(run_dir), title=title, message=message, kind=kind))
    if oom:
        raise OutOfMemoryError(message, half_batch(config, evaluating), run_dir=run_dir) from exc
    raise TrainingError(message) from exc


def _record_status(run_dir: Path, status: str, message: str | None, **extra) -> None:
    """write_status that cannot fail on its own: a full disk must not hide the run's real error."""
    try:
        write_status(run_dir, status, message, **extra)
    except OSError as exc:
        log.error("could not record status %s in %s: %s", status, run_dir, exc)


def _record_metrics(run_dir: Path, metrics: dict) -> None:
    try:
        write_json_atomic(run_dir / layout.METRICS, metrics)
    except OSError as exc:
        log.error("could not write metrics.json in %s: %s", run_dir, exc)


def _failure_message(exc: BaseException, config: TrainConfig, run_dir: Path, evaluating: bool = False) -> str:
    if is_oom(exc):
        return oom_message(config, evaluating)
    if isinstance(exc, CoreError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return disk_message(exc, run_dir)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "weights_only" in first:  # torch's advice to unpickle with weights_only=False runs any code: never given
        return ("a file of the run's checkpoint or model holds more than tensors: it is damaged or was not written "
                "by sentitune; start a new run, or resume from a checkpoint before it (details in train.log)")
    return f"{type(exc).__name__}: {first} (details in train.log)"
