"""Run the whole fine-tuning job: data -> tokenize -> baseline -> train -> test -> save, emitting events."""

from __future__ import annotations

import platform
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from core import __version__
from core.config import TrainConfig
from core.errors import CoreError, OutOfMemoryError, RunError, TrainingError
from core.events import (
    Event,
    EventLog,
    StageChanged,
    TrainingFailed,
    TrainingStopped,
)
from core.files import write_json_atomic
from core.runs import layout
from core.runs.checkpoints import checkpoint_step
from core.runs.layout import STOP_FILE, RunStatus
from core.runs.store import create_run_dir, write_status
from core.training.logs import capture_library_logs, log
from core.training.oom import half_batch, is_oom, oom_message, release_failure
from core.training.preflight import disk_message, preflight
from core.training.session import Job, TrainResult
from core.training.stopping import StoppedEarly, StopSignal


class _Emitter:
    """Hands events to the caller and appends them to events.jsonl once the run folder exists."""

    def __init__(self, on_event: Callable[[Event], None] | None, enabled: bool = True):
        self.on_event = on_event
        self.enabled = enabled  # False on ranks other than 0: one coherent events.jsonl per run
        self.log: EventLog | None = None
        self._pending: list[Event] = []

    def open(self, path: Path) -> None:
        if not self.enabled:
            return
        self.log = EventLog(path)
        for event in self._pending:
            self.log.write(event)
        self._pending.clear()

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if self.log is None:
            self._pending.append(event)
        else:
            self.log.write(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a broken listener must not break training
                log.exception("event listener failed")

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def library_versions() -> dict[str, str]:
    import datasets
    import torch
    import transformers

    return {
        "sentitune": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
    }


def train(
    config: TrainConfig,
    runs_root: str | Path = "runs",
    on_event: Callable[[Event], None] | None = None,
    stop_event: threading.Event | None = None,
    run_dir: str | Path | None = None,
    preface: list[Event] | tuple = (),
) -> TrainResult:
    """Fine-tune `config.model` on `config.dataset`; raises CoreError for bad input (no run folder made).

    `run_dir`, when given, is an empty folder made beforehand (a detached run's parent makes it so it
    can print the path at once); otherwise a new folder is made under `runs_root`.
    """
    from core.training.distributed import is_main

    emit = _Emitter(on_event, enabled=is_main())
    for event in preface:
        emit(event)
    with capture_library_logs() as handler:
        try:
            return _train(config, Path(runs_root), emit, StopSignal(stop_event), handler,
                          Path(run_dir) if run_dir else None, checkpoint=None)
        finally:
            emit.close()


def train_auto_batch(
    config: TrainConfig,
    runs_root: str | Path = "runs",
    on_event: Callable[[Event], None] | None = None,
    stop_event: threading.Event | None = None,
    run_dir: str | Path | None = None,
) -> TrainResult:
    """`train`, retried in a new run with half the batch and twice the accumulation after each CUDA OOM."""
    preface: list[Event] = []
    while True:
        try:
            return train(config, runs_root, on_event, stop_event, run_dir, preface=preface)
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


def resume(
    run_dir: str | Path,
    on_event: Callable[[Event], None] | None = None,
    stop_event: threading.Event | None = None,
) -> TrainResult:
    """Continue a stopped, failed or interrupted run from its last complete checkpoint."""
    from core.runs.checkpoints import last_complete_checkpoint
    from core.runs.lock import is_locked
    from core.runs.store import Run
    from core.training.distributed import is_main

    run = Run(run_dir)
    if is_locked(run.path):
        raise RunError(f"run {run.path.name} is still running in another process; stop it first (sentitune stop RUN)")
    checkpoint = last_complete_checkpoint(run.path)
    config = run.train_config()
    if is_main():
        (run.path / STOP_FILE).unlink(missing_ok=True)  # the request that stopped the earlier process is spent
    emit = _Emitter(on_event, enabled=is_main())
    with capture_library_logs() as handler:
        try:
            return _train(config, run.path.parent, emit, StopSignal(stop_event), handler, run.path,
                          checkpoint=checkpoint)
        finally:
            emit.close()


def _train(config: TrainConfig, runs_root: Path, emit: _Emitter, stop: StopSignal, handler,
           run_dir: Path | None, checkpoint: Path | None) -> TrainResult:
    from core.runs.lock import RunLock
    from core.training.distributed import is_main

    # Refuse a second writer early; with several processes, rank 0 holds the lock for all.
    lock = RunLock(run_dir).acquire() if run_dir is not None and is_main() else None
    if run_dir is not None:
        stop.stop_file = run_dir / STOP_FILE
    try:
        return _prepare_and_run(config, runs_root, emit, stop, handler, run_dir, checkpoint)
    except StoppedEarly:  # while loading the data or the model
        step = checkpoint_step(checkpoint) if checkpoint else 0
        if run_dir is not None and is_main():
            emit.open(run_dir / layout.EVENTS)
            when = "resumed" if checkpoint else "began"
            _record_status(run_dir, RunStatus.STOPPED, f"stopped before training {when}; nothing new was saved")
        emit(TrainingStopped(run_dir=str(run_dir or ""), step=step, test=None, saved=False))
        return TrainResult(run_dir, RunStatus.STOPPED, None)
    except CoreError as exc:
        if run_dir is not None and checkpoint is None and not isinstance(exc, TrainingError) and is_main():
            # A folder made beforehand (detached start) records why the run never began.
            emit.open(run_dir / layout.EVENTS)
            _record_status(run_dir, RunStatus.FAILED, str(exc))
            emit(TrainingFailed(run_dir=str(run_dir), title=exc.title, message=str(exc)))
        raise
    finally:
        if lock is not None:
            lock.release()


def _prepare_and_run(config, runs_root, emit, stop: StopSignal, handler, run_dir, checkpoint) -> TrainResult:
    from core.data.clean import prepare
    from core.runs.lock import RunLock
    from core.training.model import choose_precision, device_description, load_model, load_tokenizer, resolve_device

    if checkpoint is None:  # before any data or weights load (a resumed run checked this when it began)
        preflight(config, runs_root if run_dir is None else None)
    stop.check()
    emit(StageChanged("data", f"loading {config.dataset}"))
    def reading(detail: str) -> None:  # a download in progress: say how far, and stop there if asked
        stop.check()
        emit(StageChanged("data", detail))

    data = prepare(config, progress=reading)
    if checkpoint is not None:
        _check_same_data(run_dir, data)
    for note in data.notes + ["; ".join(data.cleaning.lines())]:
        emit(StageChanged("data", note))
    stop.check()
    device = resolve_device(config.device)
    precision = choose_precision(config.precision, device)
    source = str(checkpoint) if checkpoint else config.model
    emit(StageChanged("model", f"loading {source}"))
    tokenizer = load_tokenizer(source if checkpoint and (checkpoint / "tokenizer_config.json").exists() else config.model)
    import transformers

    transformers.set_seed(config.seed)
    model = load_model(source, data.label_names)
    stop.check()

    if run_dir is not None:
        return _run_in_folder(config, run_dir, emit, stop, handler, data, tokenizer, model, device,
                              precision, device_description(device), checkpoint)
    try:
        run_dir = create_run_dir(runs_root, config.model, config.dataset)
    except OSError as exc:
        raise RunError(disk_message(exc, runs_root)) from None
    stop.stop_file = run_dir / STOP_FILE
    with RunLock(run_dir):
        return _run_in_folder(config, run_dir, emit, stop, handler, data, tokenizer, model, device,
                              precision, device_description(device), checkpoint, fresh=True)


def check_resumable(run_dir: str | Path) -> None:
    """CoreError now, rather than in a background process, when a run's data no longer gives its split."""
    from core.data.clean import prepare
    from core.runs.store import Run

    run = Run(run_dir)
    _check_same_data(run.path, prepare(run.train_config()))


def _check_same_data(run_dir: Path, data) -> None:
    """DatasetError when the data a run is resumed on no longer gives the split it started with."""
    from core.errors import DatasetError
    from core.runs.store import Run

    record = Run(run_dir).config_record
    names = record.get("label_names")
    if isinstance(names, list) and names != data.label_names:
        raise DatasetError(
            f"the data of run {run_dir.name} changed since it started: its labels were {', '.join(map(str, names))} "
            f"and are now {', '.join(data.label_names)}; restore the data or start a new run"
        )
    fingerprint = record.get("data_fingerprint")
    if fingerprint and fingerprint != data.fingerprint():
        raise DatasetError(
            f"the data of run {run_dir.name} changed since it started ({data.source} no longer gives the same "
            "train/validation/test split); restore the file or start a new run"
        )


def _run_in_folder(config, run_dir, emit, stop: StopSignal, handler, data, tokenizer, model, device, precision,
                   device_desc, checkpoint, fresh: bool = False) -> TrainResult:
    from core.training.distributed import init, is_main, rank, world_size

    main = is_main()
    try:
        handler.attach(run_dir / (layout.TRAIN_LOG if main else f"train.rank{rank()}.log"))
        emit.open(run_dir / layout.EVENTS)
        if main:
            write_status(run_dir, RunStatus.RUNNING)
        if checkpoint is None and main:
            write_json_atomic(run_dir / layout.CONFIG, {
                "config": config.to_dict(),
                "created": time.time(),
                "device": device_desc,
                "precision": precision,
                "processes": world_size(),
                "versions": library_versions(),
                "label_names": data.label_names,
                "text_columns": data.text_columns,
                "label_column": data.label_column,
                "source": data.source,
                "notes": data.notes,
                "cleaning": asdict(data.cleaning),
                "samples": {name: len(frame) for name, frame in data.splits.items()},
                "data_fingerprint": data.fingerprint(),  # resuming checks the data still gives this split
            })
    except OSError as exc:
        if fresh:  # nothing of the run was written: leave no half-made folder behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise RunError(disk_message(exc, run_dir.parent)) from None
    init(device)
    job = Job(config, run_dir, emit, stop, data, tokenizer, model, device, precision, device_desc, checkpoint)
    try:
        return job.run()
    except StoppedEarly:  # tokenizing or scoring the baseline
        if main:
            if job.metrics.get("baseline"):
                _record_metrics(run_dir, job.metrics)  # what the run has: the untuned model's score
            when = "resumed" if checkpoint else "began"
            _record_status(run_dir, RunStatus.STOPPED, f"stopped before training {when}; no model was saved")
        step = checkpoint_step(checkpoint) if checkpoint else 0
        emit(TrainingStopped(run_dir=str(run_dir), step=step, test=None, saved=False))
        return TrainResult(run_dir, RunStatus.STOPPED, None)
    except KeyboardInterrupt:  # a second Ctrl+C: no time to save, but the folder says what happened
        if main:
            _record_status(run_dir, RunStatus.FAILED, "aborted by a second Ctrl+C; resume from the last checkpoint "
                                            "(sentitune resume RUN) if one was written")
        raise
    except Exception as exc:  # every failure after the folder exists is recorded in it
        evaluating = job.evaluating
        message = _failure_message(exc, config, run_dir, evaluating)
        log.error("run failed: %s", message, exc_info=not isinstance(exc, CoreError))
        if main:
            _record_status(run_dir, RunStatus.FAILED, message)
        else:  # the launcher's supervisor reports the first rank that failed
            try:
                write_json_atomic(run_dir / f"failure.rank{rank()}.json", {"rank": rank(), "message": message})
            except OSError:
                pass
        oom = is_oom(exc)
        title = OutOfMemoryError.title if oom else TrainingError.title
        kind = ("oom_eval" if evaluating else "oom") if oom else "error"
        emit(TrainingFailed(run_dir=str(run_dir), title=title, message=message, kind=kind))
        if oom:
            raise OutOfMemoryError(message, half_batch(config, evaluating), run_dir=run_dir) from exc
        raise TrainingError(message) from exc


def _record_status(run_dir: Path, status: str, message: str | None) -> None:
    """write_status that cannot fail on its own: a full disk must not hide the run's real error."""
    try:
        write_status(run_dir, status, message)
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
    return f"{type(exc).__name__}: {first} (details in train.log)"
