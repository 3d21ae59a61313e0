"""Plain Trainer recipe (pad to 128, random batches) vs sentitune's core pipeline, side by side.

    python bench/train_throughput.py [--model DIR] [--data FILE] [--samples 2000] [--epochs 1] [--max-length 128]
                                     [--seeds 42,1,2]

Both train the same model on the same split with the same seed and hyperparameters, after one short
warm-up run. Reported per recipe: optimizer-step samples/s (the steps alone, timed the same way for both:
evaluation, checkpoint saves and logging excluded; synchronised on a GPU), wall time from start to model saved (data,
tokenization, evaluation and saving included), validation and test accuracy / F1; then the ratios.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def config_for(args):
    from core.config import TrainConfig

    # max_samples such that the 70% training share is `samples` rows.
    total = math.ceil(args.samples / 0.7)
    return TrainConfig(
        model=args.model, dataset=args.data, max_samples=total, epochs=args.epochs, batch_size=16,
        learning_rate=2e-5, warmup_ratio=0.0, max_length=args.max_length, seed=42,
    )


class TrainTimer:
    """Times the optimizer steps alone (evaluation, checkpoint saves and logging excluded), for both recipes."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            seconds = 0.0
            steps = 0

            def on_step_begin(self, args, state, control, **kw):
                _sync()
                self.began = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                _sync()  # on a GPU, count the step's kernels, not only their launch
                self.seconds += time.perf_counter() - self.began
                self.steps += 1

        return _Timer()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_sentitune(timer):
    """Patch core's Trainer setup so sentitune's run carries the same step timer as the plain recipe."""
    import core.training.trainer as trainer_module

    real = trainer_module.build_trainer

    def with_timer(job, tokenized, computer):
        trainer, callback = real(job, tokenized, computer)
        trainer.add_callback(timer)
        return trainer, callback

    trainer_module.build_trainer = with_timer
    return lambda: setattr(trainer_module, "build_trainer", real)


def warm_up(config, out_dir: Path) -> None:
    """One short run first, so neither timed recipe pays the CUDA context start-up and kernel loading."""
    from core.training.train import train

    train(config.replace(max_samples=64, epochs=1, baseline=False), out_dir / "warm-up")


def plain_recipe(config, out_dir: Path) -> dict:
    """The course notebook: pad every review to max_length, random batches, fp32, Trainer defaults."""
    import datasets
    import numpy as np
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from core.data.clean import prepare
    from core.training.metrics import evaluate_predictions

    start = time.perf_counter()
    data = prepare(config)
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    from transformers import set_seed

    set_seed(config.seed)  # the same classifier-head initialisation as sentitune's

    def encode(batch):
        return tokenizer(batch["text"], padding="max_length", truncation=True, max_length=config.max_length)

    splits = {
        name: datasets.Dataset.from_pandas(frame, preserve_index=False).map(encode, batched=True)
        for name, frame in data.splits.items()
    }
    model = AutoModelForSequenceClassification.from_pretrained(config.model, num_labels=len(data.label_names))

    def metrics(pred):
        report = evaluate_predictions(pred.label_ids, np.argmax(pred.predictions, axis=-1), data.label_names)
        return {"accuracy": report["accuracy"], "f1": report["f1"]}

    timer = TrainTimer()
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(out_dir / "plain"), per_device_train_batch_size=16, per_device_eval_batch_size=64,
            num_train_epochs=config.epochs, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
            eval_strategy="epoch", save_strategy="epoch", save_total_limit=2, seed=config.seed,
            report_to="none", disable_tqdm=True, logging_strategy="no", use_cpu=False,
        ),
        train_dataset=splits["train"], eval_dataset=splits["validation"], compute_metrics=metrics,
        callbacks=[timer],
    )
    trainer.train()
    seconds = timer.seconds
    val = trainer.evaluate()
    test = trainer.evaluate(splits["test"], metric_key_prefix="test")
    trainer.save_model(str(out_dir / "plain" / "model"))
    wall = time.perf_counter() - start
    return {
        "samples_per_s": timer.steps * 16 / seconds, "wall_s": wall,
        "val_acc": val["eval_accuracy"], "val_f1": val["eval_f1"],
        "test_acc": test["test_accuracy"], "test_f1": test["test_f1"],
    }


def sentitune_pipeline(config, out_dir: Path) -> dict:
    """sentitune's core.training.train.train, exactly as the CLI and the app run it."""
    from core.training.train import train

    timer = TrainTimer()
    restore = timed_sentitune(timer)
    try:
        start = time.perf_counter()
        result = train(config, out_dir / "runs")
        wall = time.perf_counter() - start
    finally:
        restore()
    from core.runs.store import Run

    metrics = Run(result.run_dir).metrics
    best_val = max(metrics["validation"], key=lambda m: m["f1"])
    return {
        "samples_per_s": timer.steps * config.batch_size / timer.seconds, "wall_s": wall,
        "val_acc": best_val["accuracy"], "val_f1": best_val["f1"],
        "test_acc": metrics["test"]["accuracy"], "test_f1": metrics["test"]["f1"],
    }


def mean_sd(values: list[float]) -> str:
    import statistics

    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--samples", type=int, default=2000, help="training samples (default 2000)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seeds", default="42", help="comma-separated seeds; accuracy is noisy at 1 epoch, "
                        "so compare means over several (default 42)")
    parser.add_argument("--only", choices=["plain", "sentitune"], help="run one recipe (for profiling)")
    args = parser.parse_args()
    require(args)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"machine: {machine()}")
    print(f"model: {Path(args.model).name if Path(args.model).exists() else args.model} · data: {Path(args.data).name} · "
          f"{args.samples} training samples · {args.epochs} epoch(s) · batch 16 · lr 2e-5 · no warmup · "
          f"max_length {args.max_length} · seeds {args.seeds}\n")
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        warm_up(config_for(args), Path(tmp))
        for seed in seeds:
            config = config_for(args).replace(seed=seed)
            # Alternate which recipe goes first, so machine drift does not favour either.
            order = [("plain recipe", plain_recipe), ("sentitune", sentitune_pipeline)]
            for name, fn in order if seed % 2 == 0 else reversed(order):
                if args.only and not name.startswith(args.only):
                    continue
                result = fn(config, Path(tmp) / f"{name}-{seed}")
                results.setdefault(name, []).append(result)
                print(f"seed {seed} {name}: {result['samples_per_s']:.1f} samples/s, {result['wall_s']:.0f}s, "
                      f"test accuracy {result['test_acc']:.4f}", flush=True)
    import statistics

    def col(rs, key, fmt="{:.1f}"):
        values = [r[key] for r in rs]
        return fmt.format(statistics.mean(values)) if fmt else mean_sd(values)

    rows = [[name, col(rs, "samples_per_s"), col(rs, "wall_s", "{:.0f}"), col(rs, "val_acc", None),
             col(rs, "test_acc", None), col(rs, "test_f1", None)] for name, rs in results.items()]
    print()
    print(table(["recipe", "train samples/s", "wall s (start to saved)", "val acc", "test acc", "test F1"], rows))
    if len(results) == 2:
        plain, ours = results["plain recipe"], results["sentitune"]

        def mean(rs, key):
            return statistics.mean(r[key] for r in rs)

        print(f"\ntraining throughput: {mean(ours, 'samples_per_s') / mean(plain, 'samples_per_s'):.2f}x the plain recipe")
        print(f"end-to-end wall time: {mean(plain, 'wall_s') / mean(ours, 'wall_s'):.2f}x faster")
        print(f"test accuracy difference (means over {len(seeds)} seed(s)): "
              f"{(mean(ours, 'test_acc') - mean(plain, 'test_acc')) * 100:+.1f} points")


if __name__ == "__main__":
    main()
