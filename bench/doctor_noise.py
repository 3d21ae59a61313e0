"""Does the data doctor find wrong labels, and does cleaning them pay? MR sentences with 10% of their labels flipped.

    python bench/doctor_noise.py [--model DIR] [--data FILE] [--flip 0.1] [--top 200] [--epochs 2]

The data is cut once (seeded) into a pool and a clean test file of 600 sentences that no run trains on. The pool
gets 10% of its labels flipped at random (seeded): a run trains on it, the doctor ranks its suspicious rows, and
the top --top label errors are scored against the flipped rows (precision and recall). Then three runs, all scored
on the same clean test file with `evaluate`: the noisy pool, the doctor's cleaned copy of it (`--write-clean
--relabel` of its top label errors), and the original pool. The cost of recording the training dynamics is timed
inside the noisy run (the recorder's own seconds, against the run's training seconds).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402

TEST_ROWS = 600


def _name(model: str) -> str:
    """A model folder's name as people say it (the offline MiniLM package keeps its weights in .../model)."""
    path = Path(model)
    return path.parent.name if path.name == "model" else path.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--top", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    require(args)
    import pandas as pd

    from core.config import TrainConfig
    from core.doctor import diagnose, write_clean
    from core.evaluate import evaluate_run
    from core.runs.store import Run
    from core.training import dynamics
    from core.training.train import train

    print(f"machine: {machine()}")
    spent = {"seconds": 0.0}
    for name in ("record", "flush"):
        real = getattr(dynamics.DynamicsRecorder, name)

        def timed(self, *a, _real=real, **k):
            started = time.perf_counter()
            try:
                return _real(self, *a, **k)
            finally:
                spent["seconds"] += time.perf_counter() - started
        setattr(dynamics.DynamicsRecorder, name, timed)

    frame = pd.read_csv(args.data).sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
    test, pool = frame.iloc[:TEST_ROWS], frame.iloc[TEST_ROWS:].reset_index(drop=True)
    rng = random.Random(args.seed)
    flipped = set(rng.sample(range(len(pool)), int(args.flip * len(pool))))
    other = {"positive": "negative", "negative": "positive"}
    noisy = pool.copy()
    noisy["label"] = [other[label] if i in flipped else label for i, label in enumerate(pool["label"])]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        paths = {"test": root / "clean_test.csv", "noisy": root / "noisy.csv", "original": root / "original.csv"}
        test.to_csv(paths["test"], index=False)
        noisy.to_csv(paths["noisy"], index=False)
        pool.to_csv(paths["original"], index=False)

        def run_on(path: Path):
            config = TrainConfig(model=args.model, dataset=str(path), max_samples=0, epochs=args.epochs,
                                 max_length=64, learning_rate=7.6e-5, seed=args.seed, baseline=False)
            return train(config, root / "runs").run_dir

        spent["seconds"] = 0.0
        noisy_run = run_on(paths["noisy"])
        recorder_seconds = spent["seconds"]
        training_seconds = Run(noisy_run).metrics["phases"]["training"]
        started = time.perf_counter()
        diagnosis = diagnose(noisy_run)
        doctor_seconds = time.perf_counter() - started
        errors = [f for f in diagnosis.findings if f.kind == "label_error"][:args.top]
        hits = sum((f.row - 1) in flipped for f in errors)
        cleaned = root / "cleaned.csv"
        write_clean(noisy_run, errors, cleaned, relabel=True)
        runs = {"noisy (10% flipped)": noisy_run, "cleaned by the doctor": run_on(cleaned),
                "original labels": run_on(paths["original"])}
        scores = {name: evaluate_run(Run(run), str(paths["test"]), record=False) for name, run in runs.items()}

    print(f"\n{len(pool)} pool sentences, {len(flipped)} labels flipped (seed {args.seed}); {TEST_ROWS} clean test "
          f"sentences; {_name(args.model)}, {args.epochs} epochs, lr 7.6e-5, 64 tokens\n")
    print(f"doctor: {len([f for f in diagnosis.findings if f.kind == 'label_error'])} label errors flagged; "
          f"top {len(errors)}: precision {hits / max(len(errors), 1):.2f}, recall {hits / len(flipped):.2f} "
          f"({doctor_seconds:.0f} s)\n")
    print(table(["trained on", "clean test accuracy", "95% CI"], [
        [name, f"{s['accuracy']:.4f}", f"{s['accuracy_ci_low']:.3f}-{s['accuracy_ci_high']:.3f}"]
        for name, s in scores.items()]))
    lost = scores["original labels"]["accuracy"] - scores["noisy (10% flipped)"]["accuracy"]
    won = scores["cleaned by the doctor"]["accuracy"] - scores["noisy (10% flipped)"]["accuracy"]
    if lost > 0:
        print(f"\nthe noise cost {lost * 100:.1f} points; cleaning won back {won * 100:.1f} ({won / lost:.0%})")
    else:
        print(f"\nthe noise cost nothing measurable here ({lost * 100:+.1f} points); cleaning: {won * 100:+.1f}")
    print(f"recording the training dynamics: {recorder_seconds:.2f} s of {training_seconds:.0f} s of training "
          f"({recorder_seconds / training_seconds:.1%})")


if __name__ == "__main__":
    main()
