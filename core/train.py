"""Run the whole fine-tuning job: data -> tokenize -> baseline -> train -> test -> save, emitting events."""

from __future__ import annotations

import platform
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
from core.job import STOP_FILE, TrainResult
from core.job import Job as _Job
from core.job import StoppedEarly as _StoppedEarly
from core.logs import capture_library_logs, log
from core.runs import FAILED, RUNNING, STOPPED, create_run_dir, write_json_atomic, write_status


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


def half_batch(config: TrainConfig) -> TrainConfig | None:
    """The same effective batch with half the per-device batch, or None at batch size 1."""
    if config.batch_size < 2:
        return None
    return config.replace(batch_size=config.batch_size // 2, gradient_accumulation=config.gradient_accumulation * 2)


def oom_message(config: TrainConfig) -> str:
    half = max(config.batch_size // 2, 1)
    return (
        f"the GPU ran out of memory at batch_size {config.batch_size}; set batch_size {half} and "
        f"gradient_accumulation {config.gradient_accumulation * 2} (same effective batch) or lower max_length"
    )


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
    from core.distributed import is_main

    stop_event = stop_event or threading.Event()
    emit = _Emitter(on_event, enabled=is_main())
    for event in preface:
        emit(event)
    with capture_library_logs() as handler:
        try:
            return _train(config, Path(runs_root), emit, stop_event, handler,
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
            old, config, run_dir = config, exc.retry_config, None
            preface = [StageChanged("retry", (
                f"batch_size {old.batch_size} ran out of GPU memory; retrying with batch_size {config.batch_size} "
                f"x gradient_accumulation {config.gradient_accumulation} (same effective batch)"))]


def resume(
    run_dir: str | Path,
    on_event: Callable[[Event], None] | None = None,
    stop_event: threading.Event | None = None,
) -> TrainResult:
    """Continue a stopped, failed or interrupted run from its last complete checkpoint."""
    from core.checkpoints import last_complete_checkpoint
    from core.lock import is_locked
    from core.runs import Run

    run = Run(run_dir)
    if is_locked(run.path):
        raise RunError(f"run {run.path.name} is still running in another process; stop it first (sentitune stop RUN)")
    checkpoint = last_complete_checkpoint(run.path)
    config = run.train_config()
    from core.distributed import is_main

    stop_event = stop_event or threading.Event()
    emit = _Emitter(on_event, enabled=is_main())
    with capture_library_logs() as handler:
        try:
            return _train(config, run.path.parent, emit, stop_event, handler, run.path, checkpoint=checkpoint)
        finally:
            emit.close()


def _train(config: TrainConfig, runs_root: Path, emit: _Emitter, stop_event: threading.Event, handler,
           run_dir: Path | None, checkpoint: Path | None) -> TrainResult:
    from core.distributed import is_main
    from core.lock import RunLock

    # Refuse a second writer early; with several processes, rank 0 holds the lock for all.
    lock = RunLock(run_dir).acquire() if run_dir is not None and is_main() else None
    try:
        return _prepare_and_run(config, runs_root, emit, stop_event, handler, run_dir, checkpoint)
    except CoreError as exc:
        if run_dir is not None and checkpoint is None and not isinstance(exc, TrainingError) and is_main():
            # A folder made beforehand (detached start) records why the run never began.
            emit.open(run_dir / "events.jsonl")
            write_status(run_dir, FAILED, str(exc))
            emit(TrainingFailed(run_dir=str(run_dir), title=exc.title, message=str(exc)))
        raise
    finally:
        if lock is not None:
            lock.release()


def _prepare_and_run(config, runs_root, emit, stop_event, handler, run_dir, checkpoint) -> TrainResult:
    from core.data import prepare
    from core.lock import RunLock
    from core.model import choose_precision, device_description, load_model, load_tokenizer, resolve_device

    emit(StageChanged("data", f"loading {config.dataset}"))
    data = prepare(config)
    for note in data.notes + ["; ".join(data.cleaning.lines())]:
        emit(StageChanged("data", note))
    device = resolve_device(config.device)
    precision = choose_precision(config.precision, device)
    source = str(checkpoint) if checkpoint else config.model
    emit(StageChanged("model", f"loading {source}"))
    tokenizer = load_tokenizer(source if checkpoint and (checkpoint / "tokenizer_config.json").exists() else config.model)
    import transformers

    transformers.set_seed(config.seed)
    model = load_model(source, data.label_names)

    if run_dir is not None:
        return _run_in_folder(config, run_dir, emit, stop_event, handler, data, tokenizer, model, device,
                              precision, device_description(device), checkpoint)
    run_dir = create_run_dir(runs_root, config.model, config.dataset)
    with RunLock(run_dir):
        return _run_in_folder(config, run_dir, emit, stop_event, handler, data, tokenizer, model, device,
                              precision, device_description(device), checkpoint)


def _run_in_folder(config, run_dir, emit, stop_event, handler, data, tokenizer, model, device, precision,
                   device_desc, checkpoint) -> TrainResult:
    from core.distributed import init, is_main, rank, world_size

    main = is_main()
    handler.attach(run_dir / ("train.log" if main else f"train.rank{rank()}.log"))
    emit.open(run_dir / "events.jsonl")
    if main:
        (run_dir / STOP_FILE).unlink(missing_ok=True)  # a request from an earlier process is spent
        write_status(run_dir, RUNNING)
    init(device)
    if checkpoint is None and main:
        write_json_atomic(run_dir / "config.json", {
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
        })
    job = _Job(config, run_dir, emit, stop_event, data, tokenizer, model, device, precision)
    job.device_desc = device_desc
    job.checkpoint = checkpoint
    try:
        return job.run()
    except _StoppedEarly:
        if main:
            write_status(run_dir, STOPPED, "stopped before training began; no model was saved")
        emit(TrainingStopped(run_dir=str(run_dir), step=0, test=None))
        return TrainResult(run_dir, STOPPED, None)
    except Exception as exc:  # every failure after the folder exists is recorded in it
        message = _failure_message(exc, config)
        log.error("run failed: %s", message, exc_info=not isinstance(exc, CoreError))
        if main:
            write_status(run_dir, FAILED, message)
        else:  # the launcher's supervisor reports the first rank that failed
            write_json_atomic(run_dir / f"failure.rank{rank()}.json", {"rank": rank(), "message": message})
        oom = _is_oom(exc)
        title = OutOfMemoryError.title if oom else TrainingError.title
        emit(TrainingFailed(run_dir=str(run_dir), title=title, message=message))
        if oom:
            raise OutOfMemoryError(message, half_batch(config)) from exc
        raise TrainingError(message) from exc


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _failure_message(exc: BaseException, config: TrainConfig) -> str:
    if _is_oom(exc):
        return oom_message(config)
    if isinstance(exc, CoreError):
        return str(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first} (details in train.log)"
