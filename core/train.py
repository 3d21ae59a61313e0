"""Run the whole fine-tuning job: data -> tokenize -> baseline -> train -> test -> save, emitting events."""

from __future__ import annotations

import json
import platform
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import __version__
from core.config import TrainConfig
from core.errors import CoreError, OutOfMemoryError, RunError, TrainingError
from core.events import (
    EvalCompleted,
    Event,
    EventLog,
    Resumed,
    StageChanged,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
    TrainingStopped,
)
from core.logs import capture_library_logs, log
from core.metrics import REPORTED
from core.runs import FAILED, FINISHED, RUNNING, STOPPED, create_run_dir, write_json_atomic, write_status


@dataclass(frozen=True)
class TrainResult:
    """How a run ended."""

    run_dir: Path
    status: str
    test: dict[str, Any] | None


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


def _gpu_memory() -> tuple[int, int] | None:
    import torch

    free, total = torch.cuda.mem_get_info()
    return total - free, total


def _check_stop(stop_event: threading.Event) -> None:
    if stop_event.is_set():
        raise _StoppedEarly


def _seeded_subset(ds, n: int, seed: int):
    """`n` rows of a length-sorted split, chosen at random but kept in length order."""
    import random

    return ds.select(sorted(random.Random(seed).sample(range(len(ds)), n)))


def _checkpoint_step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[-1])


class _StoppedEarly(Exception):
    """The user stopped the run before the optimizer loop began."""


STOP_FILE = "stop.request"  # created by another process to ask a run to stop and save


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


def _sequential_eval_trainer():
    """A Trainer whose evaluation reads datasets in order.

    transformers 5 applies `group_by_length` to evaluation too, with shuffled mega-batches;
    our evaluation splits are already sorted by length, and test predictions must line up
    with their texts.
    """
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    class SequentialEvalTrainer(Trainer):
        def _get_eval_sampler(self, eval_dataset):
            if self.args.world_size > 1:
                return None  # accelerate shards the split in order and gathers it back in order
            return SequentialSampler(eval_dataset)

    return SequentialEvalTrainer


class _Job:
    """The steps after the run folder exists."""

    def __init__(self, config, run_dir, emit, stop_event, data, tokenizer, model, device, precision):
        self.config: TrainConfig = config
        self.run_dir: Path = run_dir
        self.emit: _Emitter = emit
        self.stop_event = stop_event
        self.data = data
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self.precision = precision
        self.device_desc = device
        self.checkpoint: Path | None = None  # resume from here when set
        self.metrics: dict[str, Any] = {"validation": [], "test": None, "baseline": None}

    def run(self) -> TrainResult:
        from core.distributed import main_first
        from core.metrics import MetricsComputer
        from core.tokenize import tokenize_splits

        config = self.config
        self.emit(StageChanged("tokenize", "tokenizing splits"))
        with main_first():  # rank 0 writes the cache, the other ranks then read it
            tokenized, cached = tokenize_splits(
                self.data, self.tokenizer, config.max_length, self.run_dir.parent / ".cache" / "tokenized"
            )
        if config.max_eval_samples and len(tokenized["validation"]) > config.max_eval_samples:
            tokenized["validation"] = _seeded_subset(tokenized["validation"], config.max_eval_samples, config.seed)
        self.emit(StageChanged("tokenize", "tokenized splits loaded from cache" if cached else "tokenized splits cached"))
        _check_stop(self.stop_event)
        computer = MetricsComputer(self.data.label_names)
        trainer, callback = self._trainer(tokenized, computer)

        if self.checkpoint is not None:
            self.metrics["baseline"] = self._earlier_baseline()
            self.emit(Resumed(step=_checkpoint_step(self.checkpoint), checkpoint=str(self.checkpoint)))
        elif config.baseline:
            self.emit(StageChanged("baseline", "scoring the untuned model on the test split"))
            self.metrics["baseline"] = self._evaluate(trainer, tokenized["test"], computer, "baseline", 0, 0.0)
            _check_stop(self.stop_event)

        self.emit(TrainingStarted(
            run_dir=str(self.run_dir), model=config.model, dataset=config.dataset,
            device=self.device_desc, precision=self.precision,
            epochs=config.epochs, total_steps=trainer.state.max_steps or self._total_steps(trainer),
            steps_per_epoch=self._steps_per_epoch(trainer), effective_batch=self._effective_batch(trainer),
            samples={k: len(v) for k, v in tokenized.items()}, label_names=self.data.label_names,
            per_device_batch=config.batch_size, processes=max(trainer.args.world_size, 1),
            gradient_accumulation=config.gradient_accumulation,
        ))
        self.emit(StageChanged("train", "training"))
        output = trainer.train(resume_from_checkpoint=str(self.checkpoint) if self.checkpoint else None)
        self.metrics["validation"] = [
            {"step": e["step"], "epoch": e["epoch"], **{k[5:]: v for k, v in e.items() if k[5:] in REPORTED}}
            for e in trainer.state.log_history if "eval_loss" in e
        ]
        self.metrics["train_runtime"] = callback.training_seconds()
        self.metrics["train_samples_per_second"] = callback.samples_per_second()
        self.metrics["global_step"] = output.global_step
        self.metrics["best_checkpoint"] = trainer.state.best_model_checkpoint

        self.emit(StageChanged("test", "scoring the fine-tuned model on the test split"))
        test = self._evaluate(trainer, tokenized["test"], computer, "test", output.global_step,
                              float(trainer.state.epoch or 0), predictions_file=self.run_dir / "test_predictions.jsonl")
        self.metrics["test"] = test
        self.emit(StageChanged("save", "saving the model"))
        trainer.save_model(str(self.run_dir / "model"))  # writes on rank 0 only
        headline = {k: test[k] for k in ("accuracy", "precision", "recall", "f1", "accuracy_ci_low", "accuracy_ci_high")}
        from core.distributed import is_main

        if not is_main():
            return TrainResult(self.run_dir, STOPPED if callback.stopped else FINISHED, test)
        self.tokenizer.save_pretrained(str(self.run_dir / "model"))
        write_json_atomic(self.run_dir / "metrics.json", self.metrics)
        if callback.stopped:
            write_status(self.run_dir, STOPPED, None, step=output.global_step)
            self.emit(TrainingStopped(run_dir=str(self.run_dir), step=output.global_step, test=headline))
            return TrainResult(self.run_dir, STOPPED, test)
        # A finished run keeps only its best model; checkpoints matter only for resuming.
        shutil.rmtree(self.run_dir / "checkpoints", ignore_errors=True)
        write_status(self.run_dir, FINISHED, None, step=output.global_step)
        self.emit(TrainingFinished(
            run_dir=str(self.run_dir), test=headline,
            train_runtime=self.metrics["train_runtime"],
            train_samples_per_second=self.metrics["train_samples_per_second"],
        ))
        return TrainResult(self.run_dir, FINISHED, test)

    def _trainer(self, tokenized, computer):
        from transformers import EarlyStoppingCallback, PrinterCallback, TrainingArguments

        from core.callback import EventCallback
        from core.tokenize import PaddingCollator, model_inputs

        config = self.config
        strategy = "steps" if config.eval_steps else "epoch"
        args = TrainingArguments(
            output_dir=str(self.run_dir / "checkpoints"),
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.eval_batch_size,
            num_train_epochs=config.epochs,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the total steps
            lr_scheduler_type=config.lr_scheduler,
            gradient_accumulation_steps=config.gradient_accumulation,
            seed=config.seed,
            data_seed=config.seed,
            eval_strategy=strategy,
            save_strategy=strategy,
            eval_steps=config.eval_steps or None,
            save_steps=config.eval_steps or 500,
            save_total_limit=2,
            load_best_model_at_end=True,
            metric_for_best_model="f1",
            greater_is_better=True,
            logging_strategy="steps",
            logging_steps=config.logging_steps or 10**9,
            logging_first_step=True,
            disable_tqdm=True,
            report_to="none",
            bf16=self.precision == "bf16",
            fp16=self.precision == "fp16",
            use_cpu=self.device == "cpu",
            train_sampling_strategy="group_by_length",
            length_column_name="length",
            remove_unused_columns=False,
            dataloader_num_workers=0,
        )
        callback = EventCallback(
            self.emit, self.stop_event, computer, stop_file=self.run_dir / STOP_FILE,
            samples_per_step=config.batch_size * config.gradient_accumulation * max(args.world_size, 1),
            log_interval=None if config.logging_steps else 1.0,
            gpu_memory=_gpu_memory if self.device == "cuda" else None,
        )
        callbacks = [callback]
        if config.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
        trainer = _sequential_eval_trainer()(
            model=self.model,
            args=args,
            data_collator=PaddingCollator(self.tokenizer, pad_to_multiple_of=8 if self.device == "cuda" else None),
            train_dataset=model_inputs(tokenized["train"]),
            eval_dataset=model_inputs(tokenized["validation"]),
            processing_class=self.tokenizer,
            compute_metrics=computer,
            callbacks=callbacks,
        )
        trainer.remove_callback(PrinterCallback)
        return trainer, callback

    def _earlier_baseline(self) -> dict[str, Any] | None:
        """The baseline a resumed run scored before it was interrupted (from its events)."""
        from core.events import read_events

        for event in read_events(self.run_dir / "events.jsonl"):
            if isinstance(event, EvalCompleted) and event.split == "baseline":
                return {**event.metrics, "confusion_matrix": event.confusion_matrix, "label_names": event.label_names}
        return None

    def _effective_batch(self, trainer) -> int:
        args = trainer.args
        return args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)

    def _steps_per_epoch(self, trainer) -> int:
        import math

        batches = math.ceil(len(trainer.train_dataset) / (trainer.args.per_device_train_batch_size * max(trainer.args.world_size, 1)))
        return max(batches // trainer.args.gradient_accumulation_steps, 1)

    def _total_steps(self, trainer) -> int:
        return self._steps_per_epoch(trainer) * self.config.epochs

    def _evaluate(self, trainer, ds, computer, split, step, epoch, predictions_file: Path | None = None):
        """Score `ds`, emit EvalCompleted, optionally save per-review predictions; returns the full report."""
        import numpy as np

        from core.metrics import softmax
        from core.tokenize import model_inputs

        output = trainer.predict(model_inputs(ds), metric_key_prefix=split)
        report = dict(computer.last or {})
        report["loss"] = float(output.metrics.get(f"{split}_loss", float("nan")))
        self.emit(EvalCompleted(
            split=split, step=step, epoch=epoch,
            metrics={k: float(v) for k, v in report.items() if isinstance(v, (int, float))},
            confusion_matrix=report.get("confusion_matrix", []), label_names=self.data.label_names,
        ))
        from core.distributed import is_main

        if predictions_file is not None and is_main():
            logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
            probs = softmax(np.asarray(logits, dtype=np.float64))
            names = self.data.label_names
            with open(predictions_file, "w", encoding="utf-8") as fh:
                for text, label, row in zip(ds["text"], ds["label"], probs):
                    pred = int(row.argmax())
                    fh.write(json.dumps({
                        "text": text, "label": names[label], "predicted": names[pred],
                        "confidence": float(row[pred]), "correct": pred == label,
                        "probabilities": {n: float(p) for n, p in zip(names, row)},
                    }) + "\n")
        return report
