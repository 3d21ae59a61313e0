"""The Trainer sentitune runs: its arguments, its evaluation and sampling rules, and its callbacks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.config import TrainConfig
from core.runs import layout
from core.runs.store import SELECTION_METRIC
from core.training.checkpoint_writer import CheckpointWriter, remove_staging, to_host


def gpu_memory() -> tuple[int, int] | None:
    """GPU memory this process holds (PyTorch's reserved pool, not other processes' share) and the GPU's total."""
    import torch

    return torch.cuda.memory_reserved(), torch.cuda.get_device_properties(0).total_memory


def pin_one_gpu(args) -> None:
    """Train on one GPU: with several visible, the Trainer would spread one process over all of them with
    nn.DataParallel (other users' GPUs on a shared box, a batch the plan does not count, no mixed precision)."""
    if args.device.type == "cuda" and args.n_gpu > 1:
        args._n_gpu = 1


def session_trainer():
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
    from transformers.trainer_pt_utils import LengthGroupedSampler, safe_globals

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
        checkpoint_seconds = 0.0  # time the loop spent on checkpoints: copying state, waiting for writes (`phases`)

        writer: CheckpointWriter | None = None  # set on one-process runs: checkpoints written off the loop
        dynamics = None  # a DynamicsRecorder on one-process runs: each training review's label probability

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            index = inputs.pop("idx", None)
            if index is None or self.dynamics is None or not model.training:
                return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True, **kwargs)
            self.dynamics.record(self.state.epoch or 0.0, index, outputs.logits, inputs["labels"])
            return (loss, outputs) if return_outputs else loss

        def _save_checkpoint(self, model, trial):
            started = time.perf_counter()
            try:
                if self.writer is None:
                    return super()._save_checkpoint(model, trial)
                return self._save_checkpoint_in_background(trial)
            finally:
                self.checkpoint_seconds += time.perf_counter() - started

        def _save_checkpoint_in_background(self, trial) -> None:
            """What the Trainer's checkpoint holds, copied to host memory here and written by `self.writer`."""
            import copy

            from transformers.trainer_callback import ExportableState
            from transformers.trainer_utils import rotate_checkpoints

            self.writer.wait()  # one write at a time (and the previous one's error, if any, ends the run here)
            step = self.state.global_step
            run_dir = self._get_output_dir(trial=trial)
            final = os.path.join(run_dir, f"checkpoint-{step}")
            self.store_flos()
            if self.state.best_global_step:
                best = os.path.join(run_dir, f"checkpoint-{self.state.best_global_step}")
                if self.state.best_global_step == step or os.path.exists(best):
                    self.state.best_model_checkpoint = best
            for cb in [cb for cb in self.callback_handler.callbacks + [self.control] if isinstance(cb, ExportableState)]:
                name, cb_state = cb.__class__.__name__, cb.state()
                if isinstance(self.state.stateful_callbacks[name], list):
                    self.state.stateful_callbacks[name].append(cb_state)
                else:
                    self.state.stateful_callbacks[name] = cb_state
            scaler = getattr(self.accelerator, "scaler", None)
            snapshot = {
                "model": to_host(self.model.state_dict()),
                "optimizer.pt": to_host(self.optimizer.state_dict()),
                "scheduler.pt": copy.deepcopy(self.lr_scheduler.state_dict()),
                "scaler.pt": to_host(scaler.state_dict()) if scaler is not None else None,
                "rng_state.pth": self._rng_states(),
                "state": copy.deepcopy(self.state),
            }
            model, tokenizer, args = self.model, self.processing_class, self.args
            best_checkpoint, limit = self.state.best_model_checkpoint, args.save_total_limit

            def write(folder: Path) -> None:
                model.save_pretrained(str(folder), state_dict=snapshot.pop("model"))
                if tokenizer is not None:
                    tokenizer.save_pretrained(str(folder))
                torch.save(args, folder / "training_args.bin")
                for name in ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth"):
                    if snapshot[name] is not None:
                        torch.save(snapshot.pop(name), folder / name)
                snapshot.pop("state").save_to_json(str(folder / "trainer_state.json"))  # last: says it is whole

            self.writer.submit(final, step, write, after=lambda: rotate_checkpoints(
                output_dir=run_dir, save_total_limit=limit, best_model_checkpoint=best_checkpoint, use_mtime=True))

        def _rng_states(self) -> dict:
            """The RNG states a checkpoint resumes from, as the Trainer saves them (CUDA's only on a CUDA run)."""
            import random

            import numpy as np

            states = {"python": random.getstate(), "numpy": np.random.get_state(),
                      "cpu": torch.random.get_rng_state()}
            if self.args.device.type == "cuda":
                states["cuda"] = torch.cuda.random.get_rng_state()
            return states

        def _finalize_training(self, *args, **kwargs):
            if self.writer is not None:
                started = time.perf_counter()
                try:
                    self.writer.wait()  # the best checkpoint is loaded from disk next
                finally:
                    self.checkpoint_seconds += time.perf_counter() - started
            return super()._finalize_training(*args, **kwargs)

        def train(self, *args, **kwargs):
            if self.writer is None:
                return super().train(*args, **kwargs)
            try:
                output = super().train(*args, **kwargs)
            except BaseException:
                try:
                    self.writer.wait()  # leave no write running behind a failure; the first error is the one said
                except Exception:  # noqa: BLE001
                    pass
                raise
            self.writer.wait()
            return output

        def evaluation_loop(self, *args, **kwargs):
            self.in_evaluation = True
            # Scoring draws from torch's RNG (each data loader takes a seed from it): leave the RNG as it was,
            # so an evaluation a stop adds, or a resume repeats, changes no later dropout mask.
            # Only this run's GPU: asking CUDA which device is current starts a CUDA context, and a CPU run on a
            # GPU box must not take GPU memory (or wait for a busy GPU) to keep its RNG.
            devices = [torch.cuda.current_device()] if self.args.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                output = super().evaluation_loop(*args, **kwargs)
            self.in_evaluation = False
            return output

        def _save_rng_state(self, output_dir: str) -> None:
            if self.args.device.type == "cuda":
                return super()._save_rng_state(output_dir)
            # A run on the CPU (or MPS) of a GPU box: the Trainer would also save the CUDA RNG, which starts a CUDA
            # context (GPU memory, and a wait when the GPU is busy) for a run that never uses it.
            import random

            import numpy as np

            os.makedirs(output_dir, exist_ok=True)
            name = "rng_state.pth" if self.args.world_size <= 1 else f"rng_state_{self.args.process_index}.pth"
            torch.save({"python": random.getstate(), "numpy": np.random.get_state(),
                        "cpu": torch.random.get_rng_state()}, os.path.join(output_dir, name))

        def _load_rng_state(self, checkpoint: str | None) -> None:
            if self.args.device.type == "cuda" or checkpoint is None:
                return super()._load_rng_state(checkpoint)
            import random

            import numpy as np

            name = "rng_state.pth" if self.args.world_size <= 1 else f"rng_state_{self.args.process_index}.pth"
            path = os.path.join(checkpoint, name)
            if not os.path.isfile(path):
                return
            with safe_globals():  # the numpy RNG state's types, and nothing else, may be unpickled
                states = torch.load(path, weights_only=True)
            random.setstate(states["python"])
            np.random.set_state(states["numpy"])
            torch.random.set_rng_state(states["cpu"])

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


def unprepare_for_training(trainer) -> None:
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


def training_arguments(config: TrainConfig, run_dir: Path, device: str, precision: str):
    """The TrainingArguments of a run: checkpoints every epoch (or eval_steps), the best by macro F1 kept."""
    from transformers import TrainingArguments

    from core.training.distributed import PROCESS_GROUP_TIMEOUT_SECONDS
    from core.training.model import tf32_available

    strategy = "steps" if config.eval_steps else "epoch"
    args = TrainingArguments(
        output_dir=str(run_dir / layout.CHECKPOINTS),
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
        # TensorBoard writes into the run folder (build_trainer); the others keep their own stores.
        report_to=config.report_to if config.report_to in ("trackio", "wandb") else "none",
        project="sentitune", run_name=run_dir.name,  # one tracker run per run folder, resumed with it
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        # Sequence classifiers return a per-batch mean loss; the Trainer's token averaging across ranks
        # would multiply it by the number of processes (doubled losses, clipping at half the norm).
        average_tokens_across_devices=False,
        logging_nan_inf_filter=False,  # a NaN loss must reach the coach, not be averaged away
        ddp_find_unused_parameters=False,  # every parameter gets a gradient: no extra pass per step
        ddp_timeout=PROCESS_GROUP_TIMEOUT_SECONDS,
        tf32=tf32_available(device),  # fp32 matrix products on Ampere tensor cores (where mixed precision is off)
    )
    pin_one_gpu(args)
    return args


def build_trainer(job, tokenized, computer):
    """The run's Trainer and its EventCallback, over `job`'s model, tokenizer, data, events and stop signal."""
    from transformers import EarlyStoppingCallback, PrinterCallback

    from core.training.callback import EventCallback
    from core.training.distributed import is_main
    from core.training.tokenize import PaddingCollator, model_inputs

    config, run_dir = job.config, job.run_dir
    args = training_arguments(config, run_dir, job.device, job.precision)
    callback = EventCallback(
        job.emit, job.stop, computer,
        samples_per_step=config.batch_size * config.gradient_accumulation * max(args.world_size, 1),
        log_interval=None if config.logging_steps else 1.0,
        gpu_memory=gpu_memory if job.device == "cuda" else None,
    )
    callbacks = [callback]
    if config.report_to == "tensorboard" and is_main():
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        # In the run folder, not under checkpoints/ (removed when the run finishes): `tensorboard --logdir runs`.
        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run_dir / layout.TENSORBOARD))))
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = session_trainer()(
        model=job.model,
        args=args,
        data_collator=PaddingCollator(job.tokenizer, pad_to_multiple_of=8 if job.device == "cuda" else None),
        # `idx`: each training review's place in the split, so its probability per epoch can be recorded.
        train_dataset=model_inputs(tokenized["train"]).add_column("idx", list(range(len(tokenized["train"])))),
        eval_dataset=model_inputs(tokenized["validation"]),
        processing_class=job.tokenizer,
        compute_metrics=computer,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    remove_staging(args.output_dir)  # what a process killed mid-write left
    if args.world_size <= 1:  # several processes save together (collectives): they keep the Trainer's own save
        trainer.writer = CheckpointWriter()
        callback.written_checkpoints = trainer.writer.written
        # Several processes each see a shard of the reviews: dynamics are recorded by one-process runs only.
        from core.training.dynamics import FILE, DynamicsRecorder

        trainer.dynamics = DynamicsRecorder(run_dir / FILE, len(tokenized["train"]), config.epochs)
        callback.dynamics = trainer.dynamics
    if config.report_to in ("trackio", "wandb"):
        from core.training.distributed import rank
        from core.training.trackers import quiet_trackers

        quiet_trackers(trainer, run_dir / (layout.TRAIN_LOG if is_main() else layout.rank_log(rank())))
    return trainer, callback
