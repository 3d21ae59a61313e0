"""A run's session once its folder exists (one segment of it: a resume adds the next): tokenize, baseline,
train, test, save. Whatever a segment saves belongs to the model it saves: a temperature and test predictions
from an earlier model never survive beside a newer one."""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import TrainConfig
from core.errors import TrainingError
from core.events import (
    EvalCompleted,
    Resumed,
    StageChanged,
    StepLogged,
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
from core.training.coach import Coach, data_diagnostics, settings_diagnostics
from core.training.metrics import REPORTED
from core.training.setup import Loaded, RunSetup
from core.training.stopping import StoppedEarly


@dataclass(frozen=True)
class TrainResult:
    """How a run ended."""

    run_dir: Path | None  # None when a stop came before the run folder was made
    status: str
    test: dict[str, Any] | None


class Job:
    """The steps after the run folder exists: a Trainer session over what `setup` and `loaded` give."""

    def __init__(self, setup: RunSetup, loaded: Loaded):
        from core.events import read_events

        self.config: TrainConfig = setup.config
        self.run_dir: Path = setup.run_dir
        self.checkpoint = setup.checkpoint  # resume from here when set
        # A resumed run's earlier segments: the coach goes on from them, and the run's training time adds up.
        self.history = read_events(self.run_dir / layout.EVENTS) if self.checkpoint is not None else []
        self.coach = Coach(learning_rate=self.config.learning_rate)
        for event in self.history:
            self.coach.observe(event)
        self.emit = self._coached(setup.emit)
        self.stop = setup.stop
        self.data = loaded.data
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model
        self.device = loaded.device
        self.precision = loaded.precision
        self.device_desc = loaded.device_desc
        self.metrics: dict[str, Any] = {"validation": [], "test": None, "baseline": None}
        self.trainer = None
        self.phases = setup.phases

    def release(self) -> None:
        """Let go of the model, its optimizer state and the Trainer as soon as the session ends: the event callback
        ties them to this job in a reference cycle, which only the garbage collector would free, whenever it ran
        (sweep runs back to back, and a retry after running out of GPU memory, need that memory now)."""
        trainer, self.trainer, self.model = self.trainer, None, None
        if trainer is not None:
            trainer.callback_handler.callbacks.clear()
            for name in ("model", "model_wrapped", "optimizer", "lr_scheduler"):
                setattr(trainer, name, None)
            accelerator = getattr(trainer, "accelerator", None)
            for name in ("_models", "_optimizers", "_schedulers", "_dataloaders"):
                getattr(accelerator, name, []).clear()

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
        from core.training.scoring import score_baseline, seeded_subset
        from core.training.tokenize import tokenize_splits
        from core.training.trainer import build_trainer, unprepare_for_training

        config = self.config
        self.emit(StageChanged("tokenize", "tokenizing splits"))
        with self.phases("tokenize"), main_first():  # rank 0 writes the cache, the other ranks then read it
            tokenized, cached = tokenize_splits(
                self.data, self.tokenizer, config.max_length, self.run_dir.parent / ".cache" / "tokenized",
                stop=self.stop,
            )
        if config.max_eval_samples and len(tokenized["validation"]) > config.max_eval_samples:
            tokenized["validation"] = seeded_subset(tokenized["validation"], config.max_eval_samples, config.seed)
        self.emit(StageChanged("tokenize", "tokenized splits loaded from cache" if cached else "tokenized splits cached"))
        if self.checkpoint is None:  # a resumed run said these when it started
            for diagnostic in [*settings_diagnostics(config.learning_rate),
                               *data_diagnostics(tokenized["train"]["length"], config.max_length,
                                                 tokenized["train"]["label"], self.data.label_names)]:
                self.emit(diagnostic)
        self.stop.check()
        computer = MetricsComputer(self.data.label_names)
        with self.phases("setup"):
            trainer, callback = build_trainer(self, tokenized, computer)
        self.trainer = trainer

        if self.checkpoint is not None:
            self.metrics["baseline"] = self._earlier_baseline()
            self.emit(Resumed(step=checkpoint_step(self.checkpoint), checkpoint=str(self.checkpoint)))
        elif config.baseline:
            with self.phases("baseline"):
                self.metrics["baseline"] = score_baseline(self, trainer, tokenized["test"], computer)
                unprepare_for_training(trainer)
        self.stop.check()

        steps_per_epoch = self._steps_per_epoch(trainer)
        self.emit(TrainingStarted(
            run_dir=str(self.run_dir), model=config.model, dataset=config.dataset,
            device=self.device_desc, precision=self.precision,
            epochs=config.epochs, total_steps=steps_per_epoch * config.epochs,
            steps_per_epoch=steps_per_epoch, effective_batch=self._effective_batch(trainer),
            samples={k: len(v) for k, v in tokenized.items()}, label_names=self.data.label_names,
            per_device_batch=config.batch_size, processes=max(trainer.args.world_size, 1),
            gradient_accumulation=config.gradient_accumulation,
        ))
        self.emit(StageChanged("train", "training"))
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=str(self.checkpoint) if self.checkpoint else None)
        # The loop's time, less the evaluations and checkpoint writes inside it (each recorded as its own stage).
        self.phases.add("evaluation", callback.evaluation_seconds)
        self.phases.add("checkpoints", trainer.checkpoint_seconds)
        self.phases.add("training", time.perf_counter() - started - callback.evaluation_seconds
                        - trainer.checkpoint_seconds)
        if self.coach.nan_step is not None:  # the callback stopped training; no model of NaNs is saved or tested
            raise TrainingError(
                f"the training loss became NaN at step {self.coach.nan_step}; the last good checkpoint is kept. "
                "Start again with a learning rate 10x lower (or precision fp32)")
        self._record_training(trainer, output, callback, tokenized["train"]["length"])
        if callback.stopped:
            self._consume_stop()  # that request ended training; a new one cuts testing short
        test = self._test(trainer, tokenized, computer, output.global_step)
        return self._save(trainer, output.global_step, stopped=callback.stopped or test is None, test=test)

    def _record_training(self, trainer, output, callback, lengths) -> None:
        """What training did, into the metrics: evaluations, the kept model, time and throughput (across segments)."""
        self.metrics["validation"] = [
            # log_history keys are "eval_<metric>": keep the metric names sentitune reports.
            {"step": e["step"], "epoch": e["epoch"], **{k[5:]: v for k, v in e.items() if k[5:] in REPORTED}}
            for e in trainer.state.log_history if "eval_loss" in e
        ]
        earlier, earlier_rate = self._earlier_training()
        self.metrics["train_runtime"] = earlier + callback.training_seconds()
        trained = callback.samples_per_second()
        # A segment that trained no step (resumed at its last checkpoint to test it) keeps the rate it had.
        self.metrics["train_samples_per_second"] = trained if trained > 0 else earlier_rate
        # Tokens per training review as trained (truncated): lets a later estimate scale to other data.
        self.metrics["train_mean_tokens"] = sum(lengths) / len(lengths) if len(lengths) else None
        self.metrics["global_step"] = output.global_step
        self.metrics["best_checkpoint"] = trainer.state.best_model_checkpoint
        self.metrics["kept"] = kept_model(trainer.state.best_model_checkpoint, self.metrics["validation"],
                                          output.global_step, float(trainer.state.epoch or 0))

    def _earlier_training(self) -> tuple[float, float | None]:
        """Seconds the earlier segments trained, and their last throughput (0 and None for a new run)."""
        from core.runs.progress import RunProgress

        if not self.history:
            return 0.0, None
        rates = [e.samples_per_second for e in self.history if isinstance(e, StepLogged) and e.samples_per_second]
        return RunProgress.from_events(self.history).elapsed, rates[-1] if rates else None

    def _test(self, trainer, tokenized, computer, step: int) -> dict[str, Any] | None:
        """Calibrate, then score the kept model on the test split; None when a stop cut it short. A temperature
        fitted before a stop is kept: it belongs to this model whether or not the test finished."""
        from core.training.scoring import evaluate, fit_temperature

        try:
            temperature = None
            if self.config.calibrate:
                with self.phases("calibration"):
                    choice = fit_temperature(self, trainer, tokenized["validation"])
                temperature = choice.temperature
                self.metrics["calibration"] = {"temperature": temperature, "applied": temperature is not None,
                                               "reason": choice.reason, "fitted_on": "validation"}
            self.emit(StageChanged("test", "scoring the fine-tuned model on the test split"))
            with self.phases("test"):
                return evaluate(self, trainer, tokenized["test"], computer, "test", step,
                                float(trainer.state.epoch or 0),
                                predictions_file=self.run_dir / layout.TEST_PREDICTIONS, temperature=temperature)
        except StoppedEarly:
            self.emit(StageChanged("test", f"test scoring stopped; {UNTESTED_ADVICE}"))
            return None

    def _save(self, trainer, step: int, stopped: bool, test: dict[str, Any] | None) -> TrainResult:
        """Save the kept model with what belongs to it (its temperature, its test), the metrics and the card."""
        from core.training.distributed import is_main

        self.metrics["test"] = test
        self.emit(StageChanged("save", "saving the model"))
        model_dir = self.run_dir / layout.MODEL
        with self.phases("save"):
            # Saved with the model, so `predict`, `evaluate` and `transformers.pipeline` truncate as training did.
            self.tokenizer.model_max_length = self.config.max_length
            trainer.save_model(str(model_dir))  # writes on rank 0 only
            if not is_main():
                return TrainResult(self.run_dir, RunStatus.STOPPED if stopped else RunStatus.FINISHED, test)
            self.tokenizer.save_pretrained(str(model_dir))
            self._write_model_extras(model_dir, test)
            write_json_atomic(self.run_dir / layout.METRICS, self.metrics)
            write_model_card(self.run_dir)  # model/README.md, from config.json and metrics.json
        self.metrics["phases"] = phases = self.phases.record()
        write_json_atomic(self.run_dir / layout.METRICS, self.metrics)  # again, with where the time went
        headline = {k: test[k] for k in ("accuracy", "precision", "recall", "f1", "accuracy_ci_low",
                                         "accuracy_ci_high")} if test else None
        kept = self.metrics["kept"]
        if stopped:
            note = None if test else f"test scoring was stopped; {UNTESTED_ADVICE}"
            write_status(self.run_dir, RunStatus.STOPPED, note, step=step)
            self.emit(TrainingStopped(run_dir=str(self.run_dir), step=step, test=headline, saved=True, kept=kept,
                                      phases=phases))
            return TrainResult(self.run_dir, RunStatus.STOPPED, test)
        # A finished run keeps only its best model; checkpoints matter only for resuming.
        shutil.rmtree(self.run_dir / layout.CHECKPOINTS, ignore_errors=True)
        write_status(self.run_dir, RunStatus.FINISHED, None, step=step)
        self.emit(TrainingFinished(
            run_dir=str(self.run_dir), test=headline,
            train_runtime=self.metrics["train_runtime"],
            train_samples_per_second=self.metrics["train_samples_per_second"] or 0.0,
            kept=kept, phases=phases,
        ))
        return TrainResult(self.run_dir, RunStatus.FINISHED, test)

    def _write_model_extras(self, model_dir: Path, test: dict[str, Any] | None) -> None:
        """This model's temperature (or none) and test predictions (or none): never an earlier model's."""
        calibration = self.metrics.get("calibration")
        if calibration and calibration.get("temperature") is not None:  # predict, evaluate, F5 divide the logits by it
            write_json_atomic(model_dir / layout.CALIBRATION, {"temperature": calibration["temperature"],
                                                               "fitted_on": "validation",
                                                               "step": self.metrics["kept"]["step"]})
        else:
            (model_dir / layout.CALIBRATION).unlink(missing_ok=True)
        if test is None:
            (self.run_dir / layout.TEST_PREDICTIONS).unlink(missing_ok=True)

    def _consume_stop(self) -> None:
        """Every rank forgets the stop request that ended training before testing starts."""
        from core.training.distributed import barrier, is_main

        self.stop.event.clear()
        barrier()  # no rank may still be reading the stop file as rank 0 removes it
        if is_main():
            self.stop.consume()
        barrier()

    def _earlier_baseline(self) -> dict[str, Any] | None:
        """The baseline a resumed run scored before it was interrupted (from its events)."""
        for event in self.history:
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


UNTESTED_ADVICE = "sentitune evaluate RUN tests the saved model and records the result in the run"


def kept_model(best_checkpoint: str | None, validation: list[dict[str, Any]], step: int, epoch: float) -> dict:
    """Which evaluation the saved model comes from: the best checkpoint's step, epoch and selection score (the
    last step when no evaluation picked one)."""
    kept_step = checkpoint_step(Path(best_checkpoint)) if best_checkpoint else step
    row = next((v for v in validation if v.get("step") == kept_step), None)
    return {"step": kept_step, "epoch": float(row["epoch"]) if row else epoch,
            SELECTION_METRIC: row.get(SELECTION_METRIC) if row else None}
