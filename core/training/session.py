"""The steps of a run once its folder exists: tokenize, baseline, train, test, save."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import TrainConfig
from core.errors import TrainingError
from core.events import (
    EvalCompleted,
    Resumed,
    StageChanged,
    TrainingFinished,
    TrainingStarted,
    TrainingStopped,
)
from core.files import write_json_atomic
from core.runs import layout
from core.runs.card import write_model_card
from core.runs.checkpoints import checkpoint_step
from core.runs.layout import RunStatus
from core.runs.store import SELECTION_METRIC, write_status
from core.training.coach import Coach, data_diagnostics
from core.training.metrics import REPORTED
from core.training.setup import Loaded, RunSetup
from core.training.stopping import StoppedEarly


@dataclass(frozen=True)
class TrainResult:
    """How a run ended."""

    run_dir: Path | None  # None when a stop came before the run folder was made
    status: str
    test: dict[str, Any] | None


def _gpu_memory() -> tuple[int, int] | None:
    """GPU memory this process holds (PyTorch's reserved pool, not other processes' share) and the GPU's total."""
    import torch

    return torch.cuda.memory_reserved(), torch.cuda.get_device_properties(0).total_memory


def pin_one_gpu(args) -> None:
    """Train on one GPU: with several visible, the Trainer would spread one process over all of them with
    nn.DataParallel (other users' GPUs on a shared box, a batch the plan does not count, no mixed precision)."""
    if args.device.type == "cuda" and args.n_gpu > 1:
        args._n_gpu = 1


def _seeded_subset(ds, n: int, seed: int):
    """`n` rows of a length-sorted split, chosen at random but kept in length order."""
    import random

    return ds.select(sorted(random.Random(seed).sample(range(len(ds)), n)))


def _session_trainer():
    """The Trainer sentitune runs: evaluation read in order, and training batches that depend on (seed, epoch) alone.

    transformers 5 applies `group_by_length` to evaluation too, with shuffled mega-batches; our evaluation
    splits are already sorted by length, and test predictions must line up with their texts.

    Its length-grouped training sampler draws each epoch's order from the global RNG, whose state at the start
    of an epoch depends on what ran before: a run resumed mid-training saw a different order from its epoch on
    than the uninterrupted run would have. Seeding each epoch's order with seed + epoch, and keeping evaluation
    from drawing on the RNG, makes a resumed run read the same batches in the same order with the same dropout.
    """
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class EpochSeededLengthSampler(LengthGroupedSampler):
        def __init__(self, *args, seed: int, **kwargs):
            super().__init__(*args, **kwargs)
            self.seed, self.epoch = seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self):
            self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
            return super().__iter__()

    class SessionTrainer(Trainer):
        in_evaluation = False  # stays True when an evaluation fails, so a failure can say where it happened

        def evaluation_loop(self, *args, **kwargs):
            self.in_evaluation = True
            # Scoring draws from torch's RNG (each data loader takes a seed from it): leave the RNG as it was,
            # so an evaluation a stop adds, or a resume repeats, changes no later dropout mask.
            devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=devices):
                output = super().evaluation_loop(*args, **kwargs)
            self.in_evaluation = False
            return output

        def _get_eval_sampler(self, eval_dataset):
            if self.args.world_size > 1:
                return None  # accelerate shards the split in order and gathers it back in order
            return SequentialSampler(eval_dataset)

        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if self.args.world_size > 1 or self.args.length_column_name not in dataset.column_names:
                return super()._get_train_sampler(train_dataset)  # several ranks: the distributed sampler's seeding
            return EpochSeededLengthSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=dataset[self.args.length_column_name], seed=self.args.data_seed or self.args.seed,
            )

    return SessionTrainer


def _unprepare_for_training(trainer) -> None:
    """Undo the evaluation-only preparation that scoring before training leaves on the model.

    `trainer.predict` before `train` has accelerate prepare the bare model for evaluation and mark it
    prepared; `train` would then get it back unwrapped, never in DistributedDataParallel, and each rank
    would train its own copy.
    """
    model = trainer.model
    trainer.accelerator._models[:] = [m for m in trainer.accelerator._models if m is not model]
    if getattr(model, "_is_accelerate_prepared", False):
        model._is_accelerate_prepared = False
    if hasattr(model, "_original_forward"):  # mixed precision wrapped forward in autocast: training wraps it again
        model.forward = model._original_forward
        del model._original_forward
    trainer.model_wrapped = model


class Job:
    """The steps after the run folder exists: a Trainer session over what `setup` and `loaded` give."""

    def __init__(self, setup: RunSetup, loaded: Loaded):
        self.config: TrainConfig = setup.config
        self.run_dir: Path = setup.run_dir
        self.coach = Coach(learning_rate=self.config.learning_rate)
        self.emit = self._coached(setup.emit)
        self.stop = setup.stop
        self.checkpoint = setup.checkpoint  # resume from here when set
        self.data = loaded.data
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model
        self.device = loaded.device
        self.precision = loaded.precision
        self.device_desc = loaded.device_desc
        self.metrics: dict[str, Any] = {"validation": [], "test": None, "baseline": None}
        self.trainer = None

    def _coached(self, emit):
        """`emit` that also hands each event to the coach and emits the diagnostics it triggers."""
        def emit_and_coach(event) -> None:
            emit(event)
            for diagnostic in self.coach.observe(event):
                emit(diagnostic)
        return emit_and_coach

    @property
    def evaluating(self) -> bool:
        """Whether the run was scoring (baseline, validation or test) rather than training when it stopped."""
        return bool(getattr(self.trainer, "in_evaluation", False))

    def run(self) -> TrainResult:
        from core.training.distributed import main_first
        from core.training.metrics import MetricsComputer
        from core.training.tokenize import tokenize_splits

        config = self.config
        self.emit(StageChanged("tokenize", "tokenizing splits"))
        with main_first():  # rank 0 writes the cache, the other ranks then read it
            tokenized, cached = tokenize_splits(
                self.data, self.tokenizer, config.max_length, self.run_dir.parent / ".cache" / "tokenized",
                stop=self.stop,
            )
        if config.max_eval_samples and len(tokenized["validation"]) > config.max_eval_samples:
            tokenized["validation"] = _seeded_subset(tokenized["validation"], config.max_eval_samples, config.seed)
        self.emit(StageChanged("tokenize", "tokenized splits loaded from cache" if cached else "tokenized splits cached"))
        if self.checkpoint is None:  # a resumed run said these when it started
            for diagnostic in data_diagnostics(tokenized["train"]["length"], config.max_length,
                                               tokenized["train"]["label"], self.data.label_names):
                self.emit(diagnostic)
        self.stop.check()
        computer = MetricsComputer(self.data.label_names)
        trainer, callback = self._trainer(tokenized, computer)
        self.trainer = trainer

        if self.checkpoint is not None:
            self.metrics["baseline"] = self._earlier_baseline()
            self.emit(Resumed(step=checkpoint_step(self.checkpoint), checkpoint=str(self.checkpoint)))
        elif config.baseline:
            self._score_baseline(trainer, tokenized["test"], computer)
            _unprepare_for_training(trainer)
        self.stop.check()

        self.emit(TrainingStarted(
            run_dir=str(self.run_dir), model=config.model, dataset=config.dataset,
            device=self.device_desc, precision=self.precision,
            epochs=config.epochs, total_steps=self._steps_per_epoch(trainer) * config.epochs,
            steps_per_epoch=self._steps_per_epoch(trainer), effective_batch=self._effective_batch(trainer),
            samples={k: len(v) for k, v in tokenized.items()}, label_names=self.data.label_names,
            per_device_batch=config.batch_size, processes=max(trainer.args.world_size, 1),
            gradient_accumulation=config.gradient_accumulation,
        ))
        self.emit(StageChanged("train", "training"))
        output = trainer.train(resume_from_checkpoint=str(self.checkpoint) if self.checkpoint else None)
        if self.coach.nan_step is not None:  # the callback stopped training; no model of NaNs is saved or tested
            raise TrainingError(
                f"the training loss became NaN at step {self.coach.nan_step}; the last good checkpoint is kept. "
                "Start again with a learning rate 10x lower (or precision fp32)")
        self.metrics["validation"] = [
            # log_history keys are "eval_<metric>": keep the metric names sentitune reports.
            {"step": e["step"], "epoch": e["epoch"], **{k[5:]: v for k, v in e.items() if k[5:] in REPORTED}}
            for e in trainer.state.log_history if "eval_loss" in e
        ]
        self.metrics["train_runtime"] = callback.training_seconds()
        self.metrics["train_samples_per_second"] = callback.samples_per_second()
        # Tokens per training review as trained (truncated): lets a later estimate scale to other data.
        lengths = tokenized["train"]["length"]
        self.metrics["train_mean_tokens"] = sum(lengths) / len(lengths) if len(lengths) else None
        self.metrics["global_step"] = output.global_step
        self.metrics["best_checkpoint"] = trainer.state.best_model_checkpoint
        if callback.stopped:
            self._consume_stop()  # that request ended training; a new one cuts testing short

        test = None
        try:
            temperature = self._fit_temperature(trainer, tokenized["validation"]) if config.calibrate else None
            self.emit(StageChanged("test", "scoring the fine-tuned model on the test split"))
            test = self._evaluate(trainer, tokenized["test"], computer, "test", output.global_step,
                                  float(trainer.state.epoch or 0),
                                  predictions_file=self.run_dir / layout.TEST_PREDICTIONS, temperature=temperature)
        except StoppedEarly:
            self.emit(StageChanged("test", "test scoring stopped; score the saved model with sentitune evaluate RUN"))
        self.metrics["test"] = test
        self.emit(StageChanged("save", "saving the model"))
        # Saved with the model, so `predict`, `evaluate` and `transformers.pipeline` truncate as training did.
        self.tokenizer.model_max_length = config.max_length
        trainer.save_model(str(self.run_dir / layout.MODEL))  # writes on rank 0 only
        headline = {k: test[k] for k in ("accuracy", "precision", "recall", "f1", "accuracy_ci_low",
                                         "accuracy_ci_high")} if test else None
        from core.training.distributed import is_main

        stopped = callback.stopped or test is None
        if not is_main():
            return TrainResult(self.run_dir, RunStatus.STOPPED if stopped else RunStatus.FINISHED, test)
        self.tokenizer.save_pretrained(str(self.run_dir / layout.MODEL))
        calibration = self.metrics.get("calibration")
        if calibration and test is not None:  # predict, evaluate and the console divide the logits by it
            write_json_atomic(self.run_dir / layout.MODEL / layout.CALIBRATION,
                              {"temperature": calibration["temperature"], "fitted_on": "validation"})
        write_json_atomic(self.run_dir / layout.METRICS, self.metrics)
        write_model_card(self.run_dir)  # model/README.md, from config.json and metrics.json
        if stopped:
            note = None if test else "test scoring was stopped; score the model with sentitune evaluate RUN"
            write_status(self.run_dir, RunStatus.STOPPED, note, step=output.global_step)
            self.emit(TrainingStopped(run_dir=str(self.run_dir), step=output.global_step, test=headline, saved=True))
            return TrainResult(self.run_dir, RunStatus.STOPPED, test)
        # A finished run keeps only its best model; checkpoints matter only for resuming.
        shutil.rmtree(self.run_dir / layout.CHECKPOINTS, ignore_errors=True)
        write_status(self.run_dir, RunStatus.FINISHED, None, step=output.global_step)
        self.emit(TrainingFinished(
            run_dir=str(self.run_dir), test=headline,
            train_runtime=self.metrics["train_runtime"],
            train_samples_per_second=self.metrics["train_samples_per_second"],
        ))
        return TrainResult(self.run_dir, RunStatus.FINISHED, test)

    def _score_baseline(self, trainer, test, computer) -> None:
        """The untuned model on the test split, or on a seeded sample of it (`baseline_samples`)."""
        config = self.config
        total = len(test)
        if config.baseline_samples and total > config.baseline_samples:
            test = _seeded_subset(test, config.baseline_samples, config.seed)
            what = f"{len(test):,} of the {total:,} test reviews (a seeded sample; baseline_samples)"
        else:
            what = f"the {total:,} test reviews"
        self.emit(StageChanged("baseline", f"scoring the untuned model on {what}"))
        baseline = self._evaluate(trainer, test, computer, "baseline", 0, 0.0)
        baseline["sampled_from"] = total
        self.metrics["baseline"] = baseline

    def _consume_stop(self) -> None:
        """Every rank forgets the stop request that ended training before testing starts."""
        from core.training.distributed import barrier, is_main

        self.stop.event.clear()
        barrier()  # no rank may still be reading the stop file as rank 0 removes it
        if is_main():
            self.stop.consume()
        barrier()

    def _trainer(self, tokenized, computer):
        from transformers import EarlyStoppingCallback, PrinterCallback, TrainingArguments

        from core.training.callback import EventCallback
        from core.training.distributed import is_main
        from core.training.tokenize import PaddingCollator, model_inputs

        config = self.config
        strategy = "steps" if config.eval_steps else "epoch"
        args = TrainingArguments(
            output_dir=str(self.run_dir / layout.CHECKPOINTS),
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
            metric_for_best_model=SELECTION_METRIC,  # macro F1: one-class models cannot be "best"
            greater_is_better=True,
            logging_strategy="steps",
            # 0 means about once a second: the callback asks for logs by time, so the Trainer's own count never fires
            logging_steps=config.logging_steps or 10**9,
            logging_first_step=True,
            disable_tqdm=True,
            # TensorBoard writes into the run folder (below); the others keep their own stores.
            report_to=config.report_to if config.report_to in ("trackio", "wandb") else "none",
            project="sentitune", run_name=self.run_dir.name,  # one tracker run per run folder, resumed with it
            bf16=self.precision == "bf16",
            fp16=self.precision == "fp16",
            use_cpu=self.device == "cpu",
            train_sampling_strategy="group_by_length",
            length_column_name="length",
            remove_unused_columns=False,
            dataloader_num_workers=0,
            # Sequence classifiers return a per-batch mean loss; the Trainer's token averaging across ranks
            # would multiply it by the number of processes (doubled losses, clipping at half the norm).
            average_tokens_across_devices=False,
            logging_nan_inf_filter=False,  # a NaN loss must reach the coach, not be averaged away
            ddp_find_unused_parameters=False,  # every parameter gets a gradient: no extra pass per step
        )
        pin_one_gpu(args)
        callback = EventCallback(
            self.emit, self.stop, computer,
            samples_per_step=config.batch_size * config.gradient_accumulation * max(args.world_size, 1),
            log_interval=None if config.logging_steps else 1.0,
            gpu_memory=_gpu_memory if self.device == "cuda" else None,
        )
        callbacks = [callback]
        if config.report_to == "tensorboard" and is_main():
            from torch.utils.tensorboard import SummaryWriter
            from transformers.integrations import TensorBoardCallback

            # In the run folder, not under checkpoints/ (removed when the run finishes): `tensorboard --logdir runs`.
            callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(self.run_dir / layout.TENSORBOARD))))
        if config.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
        trainer = _session_trainer()(
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
        if config.report_to in ("trackio", "wandb"):
            from core.training.distributed import rank
            from core.training.trackers import quiet_trackers

            quiet_trackers(trainer, self.run_dir / (layout.TRAIN_LOG if is_main() else layout.rank_log(rank())))
        return trainer, callback

    def _earlier_baseline(self) -> dict[str, Any] | None:
        """The baseline a resumed run scored before it was interrupted (from its events)."""
        from core.events import read_events

        for event in read_events(self.run_dir / layout.EVENTS):
            if isinstance(event, EvalCompleted) and event.split == "baseline":
                return {**event.metrics, "confusion_matrix": event.confusion_matrix, "label_names": event.label_names}
        return None

    def _effective_batch(self, trainer) -> int:
        args = trainer.args
        return args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)

    def _steps_per_epoch(self, trainer) -> int:
        """Optimizer steps per epoch, counted as the Trainer counts them (a last partial accumulation is a step)."""
        args = trainer.args
        batches = math.ceil(len(trainer.train_dataset) / (args.per_device_train_batch_size * max(args.world_size, 1)))
        return max(math.ceil(batches / args.gradient_accumulation_steps), 1)

    def _fit_temperature(self, trainer, validation) -> float:
        """The temperature that calibrates the final model's confidences, fitted on the validation split."""
        import numpy as np

        from core.training.calibration import fit_temperature
        from core.training.tokenize import model_inputs

        self.emit(StageChanged("test", "calibrating confidences on the validation split"))
        output = trainer.predict(model_inputs(validation), metric_key_prefix="calibration")
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        return fit_temperature(np.asarray(logits, dtype=np.float64), np.asarray(validation["label"]))

    def _evaluate(self, trainer, ds, computer, split, step, epoch, predictions_file: Path | None = None,
                  temperature: float | None = None):
        """Score `ds`, emit EvalCompleted, optionally save per-review predictions; returns the full report.

        With a `temperature`, probabilities are calibrated (logits / temperature), and the report gains the
        expected calibration error of what is reported (`ece`) and, in metrics.json, before and after.
        """
        import numpy as np

        from core.training.calibration import expected_calibration_error, reliability, scaled_softmax
        from core.training.tokenize import model_inputs

        output = trainer.predict(model_inputs(ds), metric_key_prefix=split)
        report = dict(computer.last or {})
        report["loss"] = float(output.metrics.get(f"{split}_loss", float("nan")))
        logits = np.asarray(output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions,
                            dtype=np.float64)
        labels = np.asarray(ds["label"])
        probs = scaled_softmax(logits, temperature or 1.0)
        if split == "test" and len(labels):
            report["ece"] = expected_calibration_error(probs, labels)
            if temperature is not None:
                self.metrics["calibration"] = {
                    "temperature": temperature, "fitted_on": "validation",
                    "ece_before": expected_calibration_error(scaled_softmax(logits), labels),
                    "ece_after": report["ece"],
                }
            self.metrics["reliability"] = [b.to_dict() for b in reliability(probs, labels)]
        self.emit(EvalCompleted(
            split=split, step=step, epoch=epoch,
            metrics={k: float(v) for k, v in report.items() if isinstance(v, (int, float))},
            confusion_matrix=report.get("confusion_matrix", []), label_names=self.data.label_names,
        ))
        from core.training.distributed import is_main

        if predictions_file is not None and is_main():
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
