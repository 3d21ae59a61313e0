"""A TrainerCallback that turns the Trainer's loop into sentitune events and honours a stop request."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from transformers import TrainerCallback

from core.events import CheckpointSaved, EvalCompleted, Event, StepLogged
from core.training.distributed import any_rank, any_ranks, check_ranks_agree
from core.training.metrics import REPORTED, MetricsComputer
from core.training.stopping import StoppedEarly, StopSignal

STOP_SYNC_STEPS = 8  # with several processes, how often (in steps) the ranks agree on a stop request


class EventCallback(TrainerCallback):
    """Emits StepLogged about once a second (or per `logging_steps`), EvalCompleted and CheckpointSaved."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        stop: StopSignal,
        metrics: MetricsComputer,
        samples_per_step: int,
        log_interval: float | None = 1.0,
        gpu_memory: Callable[[], tuple[int, int] | None] | None = None,
    ):
        self.emit = emit
        self.stop = stop  # this process's Event, or the run's stop file written by another process
        self.metrics = metrics
        self.samples_per_step = samples_per_step
        self.log_interval = log_interval  # None: the Trainer's logging_steps decide
        self.gpu_memory = gpu_memory
        self.stopped = False
        self._start_step = self._last_step = 0
        self.in_training = False
        self._start = self._last_log = 0.0
        self._eval_seconds = 0.0
        self._prediction_steps = 0
        # Set when checkpoints are written in the background: the ones finished since the last call.
        self.written_checkpoints: Callable[[], list[tuple[int, str]]] | None = None
        self.dynamics = None  # core.training.dynamics.DynamicsRecorder: written at each epoch's end

    def on_train_begin(self, args, state, control, **kwargs):
        self.in_training = True
        self._start = self._last_log = time.perf_counter()
        self._start_step = self._last_step = state.global_step  # non-zero when resuming from a checkpoint

    def on_train_end(self, args, state, control, **kwargs):
        self.in_training = False
        if self.dynamics is not None:
            self.dynamics.flush()  # a stop mid-epoch: what that epoch saw
        self._say_written(state)  # the Trainer waited for the last write before it loaded the best model

    def on_step_end(self, args, state, control, **kwargs):
        self._say_written(state)
        requested = self.stop.requested()
        now = time.perf_counter()
        log_due = self.log_interval is not None and now - self._last_log >= self.log_interval
        if args.world_size > 1:
            # Logging and stopping lead to collectives (the loss is gathered, the model evaluated and saved): every
            # rank must decide them at the same step, never from its own clock or file system view. They are
            # agreed every few steps, in one all-reduce, since it makes each GPU wait for the others.
            if not self.stopped and state.global_step % STOP_SYNC_STEPS == 0:
                requested, log_due = any_ranks(requested, log_due)
                if requested:
                    self.stop.event.set()
            else:
                requested = log_due = False
        if requested and not self.stopped:
            # Evaluate and checkpoint the model so far, then leave the loop.
            self.stopped = True
            control.should_training_stop = True
            control.should_evaluate = True
            control.should_save = True
            control.should_log = True
        if log_due:
            control.should_log = True
        if state.global_step >= state.max_steps:
            control.should_log = True
        self._last_step = state.global_step
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.dynamics is not None:
            self.dynamics.flush()
        if self.stopped:
            # The stop step was already evaluated and saved; the epoch end that follows the early exit
            # must not do it twice.
            control.should_evaluate = False
            control.should_save = False
        return control

    def on_prediction_step(self, args, state, control, **kwargs):
        # Scoring the baseline or the test split can take minutes: a stop cuts it short (every rank together).
        # Validation inside training runs to its end; the stop then lands at the next step.
        if self.in_training:
            return
        requested = self.stop.requested()
        if args.world_size > 1:
            self._prediction_steps += 1  # every rank scores the same number of batches
            requested = self._prediction_steps % STOP_SYNC_STEPS == 0 and any_rank(requested)
        if requested:
            raise StoppedEarly

    @property
    def evaluation_seconds(self) -> float:
        """Seconds the evaluations inside the training loop took."""
        return self._eval_seconds

    def training_seconds(self) -> float:
        """Wall time in the optimizer loop, evaluation excluded."""
        return max(time.perf_counter() - self._start - self._eval_seconds, 1e-9)

    def samples_per_second(self) -> float:
        """Training throughput of this process (steps done before a resume excluded)."""
        return (self._last_step - self._start_step) * self.samples_per_step / self.training_seconds()

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})  # other callbacks pop keys from the shared dict
        if "loss" not in logs or not self.in_training:
            return
        self._last_log = time.perf_counter()
        seconds = self.training_seconds()
        step = state.global_step
        rate = (step - self._start_step) / seconds
        memory = self.gpu_memory() if self.gpu_memory else None
        self.emit(
            StepLogged(
                step=step,
                total_steps=state.max_steps,
                epoch=float(state.epoch or 0.0),
                loss=_number(logs.get("loss")),
                learning_rate=_number(logs.get("learning_rate")),
                grad_norm=_number(logs.get("grad_norm")),
                samples_per_second=rate * self.samples_per_step,
                elapsed=time.perf_counter() - self._start,
                eta=(state.max_steps - step) / rate if rate > 0 else 0.0,
                gpu_memory_used=memory[0] if memory else None,
                gpu_memory_total=memory[1] if memory else None,
            )
        )
        loss = _number(logs.get("loss"))
        if loss is not None and not math.isfinite(loss):
            control.should_training_stop = True  # the coach says so (nan_loss); the session fails the run

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if not self.in_training:
            return
        if args.world_size > 1 and model is not None:
            check_ranks_agree(model, state.global_step)
        metrics = dict(metrics or {})
        self._eval_seconds += float(metrics.get("eval_runtime", 0.0))
        report = self.metrics.last or {}
        values = {k[5:]: float(v) for k, v in metrics.items() if k[5:] in REPORTED and isinstance(v, (int, float))}
        self.emit(
            EvalCompleted(
                split="validation",
                step=state.global_step,
                epoch=float(state.epoch or 0.0),
                metrics=values,
                confusion_matrix=report.get("confusion_matrix", []),
                label_names=list(self.metrics.label_names),
            )
        )

    def on_save(self, args, state, control, **kwargs):
        if self.written_checkpoints is None:  # written in the loop: on disk now
            path = f"{args.output_dir}/checkpoint-{state.global_step}"
            self.emit(CheckpointSaved(step=state.global_step, epoch=float(state.epoch or 0.0), path=path))
        else:
            self._say_written(state)

    def _say_written(self, state) -> None:
        """CheckpointSaved for each checkpoint the background writer has finished: said once it is on disk."""
        if self.written_checkpoints is None:
            return
        for step, path in self.written_checkpoints():
            epoch = next((e["epoch"] for e in reversed(state.log_history) if e.get("step") == step and "epoch" in e),
                         float(state.epoch or 0.0))
            self.emit(CheckpointSaved(step=step, epoch=float(epoch), path=path))


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
