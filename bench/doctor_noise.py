"""Does the data doctor find wrong labels, and does cleaning them pay? MR sentences with 10% of their labels flipped.

    python bench/doctor_noise.py [--model DIR] [--data FILE] [--flip 0.1] [--top 200] [--epochs 2] [--folds 4]
                                 [--train-seeds 3] [--also-drop] [--work DIR]

The data is cut once (seeded) into a pool and a clean test file of 600 sentences that no run trains on. The pool
gets 10% of its labels flipped at random (seeded): a run trains on it, and the doctor ranks its suspicious rows
twice, from the training dynamics alone (`sentitune doctor RUN`) and with cross-validated probabilities for the
training rows (`--folds K`); the top --top label errors of each are scored against the flipped rows (precision and
recall). Then, all scored on the same clean test file with `evaluate`: the noisy pool, a cleaned copy of it
(`--write-clean --relabel` of the top --top label errors; with --also-drop a second one, `--write-clean --drop` of
every label error flagged), and the original pool, each trained --train-seeds times (seeds --seed, --seed + 1, ...:
the split and the training order change) and reported by its mean, since one run's accuracy on 600 sentences moves
by more than the effect measured. The doctor ranks the first noisy run's rows. The cost of recording the training
dynamics is timed inside every run trained (the recorder's own seconds, against the runs' training seconds).

--work DIR keeps the files and runs there; a second call with the same DIR reuses the runs already finished.
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


def _precision(findings, flipped: set[int], top: int) -> tuple[int, int]:
    """(hits, listed) of the top label errors against the flipped pool rows."""
    errors = [f for f in findings if f.kind == "label_error"][:top]
    return sum((f.row - 1) in flipped for f in errors), len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--top", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train-seeds", type=int, default=3, help="trainings per file, averaged (default 3)")
    parser.add_argument("--also-drop", action="store_true", help="also train on a copy with every flagged row dropped")
    parser.add_argument("--work", help="keep files and runs here, and reuse the finished ones (default: a temp dir)")
    args = parser.parse_args()
    require(args)
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        measure(args, Path(args.work).resolve())
    else:
        with tempfile.TemporaryDirectory() as scratch:
            measure(args, Path(scratch))


def measure(args: argparse.Namespace, root: Path) -> None:
    import pandas as pd

    from core.config import TrainConfig
    from core.data.clean import prepare
    from core.doctor import diagnose, write_clean
    from core.errors import CoreError
    from core.evaluate import evaluate_run
    from core.runs.store import Run, list_runs
    from core.training import dynamics
    from core.training.setup import check_same_data
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
    paths = {"test": root / "test.csv", "noisy": root / "noisy.csv", "original": root / "original.csv"}
    for key, data in (("test", test), ("noisy", noisy), ("original", pool)):
        text = data.to_csv(index=False)
        if not paths[key].exists() or paths[key].read_text() != text:  # a changed file is never reused
            paths[key].write_text(text)
    trained = {"seconds": 0.0}

    def run_on(path: Path, seed: int = args.seed) -> Path:
        config = TrainConfig(model=args.model, dataset=str(path), max_samples=0, epochs=args.epochs,
                             max_length=64, learning_rate=7.6e-5, seed=seed, baseline=False)
        for info in list_runs(root / "runs"):
            if info.has_model and info.status == "finished" and Run(info.path).train_config() == config:
                try:
                    check_same_data(info.path, prepare(config))  # a file rewritten since: trained again
                except CoreError:
                    continue
                print(f"reusing {info.path.name} (trained on {path.name})")
                return info.path
        run = train(config, root / "runs").run_dir
        trained["seconds"] += Run(run).metrics["phases"]["training"]
        return run

    noisy_run = run_on(paths["noisy"])
    started = time.perf_counter()
    alone = diagnose(noisy_run, folds=0)
    alone_seconds = time.perf_counter() - started
    (root / "noisy-run").write_text(str(noisy_run))
    from core.folds import FILE as FOLDS_FILE

    reused = (noisy_run / FOLDS_FILE).exists()
    started = time.perf_counter()
    crossed = diagnose(noisy_run, folds=args.folds, on_progress=lambda line: print(line, flush=True)
                       if line.endswith("left out") else None)
    crossed_seconds = time.perf_counter() - started
    errors = [f for f in crossed.findings if f.kind == "label_error"]
    cleaned = {"relabel": root / "cleaned-relabel.csv", "drop": root / "cleaned-drop.csv"}
    write_clean(noisy_run, errors[:args.top], cleaned["relabel"], relabel=True)
    files = {"noisy (10% flipped)": paths["noisy"],
             f"cleaned: top {args.top} label errors relabelled": cleaned["relabel"]}
    if args.also_drop:
        write_clean(noisy_run, errors, cleaned["drop"], relabel=False)
        files[f"cleaned: all {len(errors)} label errors dropped"] = cleaned["drop"]
    files["original labels"] = paths["original"]
    seeds = [args.seed + i for i in range(max(1, args.train_seeds))]
    accuracy = {name: [evaluate_run(Run(run_on(path, seed)), str(paths["test"]), record=False)["accuracy"]
                       for seed in seeds] for name, path in files.items()}

    print(f"\n{len(pool)} pool sentences, {len(flipped)} labels flipped (seed {args.seed}); {TEST_ROWS} clean test "
          f"sentences; {_name(args.model)}, {args.epochs} epochs, lr 7.6e-5, 64 tokens\n")
    rows = []
    for method, diagnosis, seconds in (("training dynamics (the default)", alone, alone_seconds),
                                       (f"--folds {args.folds}", crossed, crossed_seconds)):
        flagged = [f for f in diagnosis.findings if f.kind == "label_error"]
        hits, listed = _precision(flagged, flipped, args.top)
        all_hits, _ = _precision(flagged, flipped, len(flagged))
        rows.append([method, len(flagged), f"{hits / max(listed, 1):.2f}", f"{hits / len(flipped):.2f}",
                     f"{all_hits / max(len(flagged), 1):.2f}", f"{all_hits / len(flipped):.2f}", f"{seconds:.0f}"])
    print(table(["doctor", "label errors flagged", f"top {args.top} precision", f"top {args.top} recall",
                 "all flagged: precision", "recall", "seconds"], rows))
    print()
    mean = {name: sum(values) / len(values) for name, values in accuracy.items()}
    print(table(["trained on", f"clean test accuracy, mean of {len(seeds)}", "each training seed " + ", ".join(
        str(seed) for seed in seeds)], [[name, f"{mean[name]:.4f}", " ".join(f"{v:.4f}" for v in values)]
                                        for name, values in accuracy.items()]))
    noisy_accuracy = mean["noisy (10% flipped)"]
    lost = mean["original labels"] - noisy_accuracy
    for name in accuracy:
        if name.startswith("cleaned"):
            won = mean[name] - noisy_accuracy
            share = f" ({won / lost:.0%} of what the noise cost)" if lost > 0 else ""
            print(f"{name}: {won * 100:+.1f} points{share}")
    print(f"the noise cost {lost * 100:+.1f} points")
    noisy_training = Run(noisy_run).metrics["phases"]["training"]
    print(f"--folds {args.folds}: {crossed_seconds:.0f} s, {crossed_seconds / noisy_training:.1f}x the noisy run's "
          f"training ({noisy_training:.0f} s)" + (" (fold probabilities reused from --work: not timed)"
                                                   if reused else ""))
    if trained["seconds"]:
        print(f"recording the training dynamics: {spent['seconds']:.2f} s of {trained['seconds']:.0f} s of training "
              f"({spent['seconds'] / trained['seconds']:.1%}) in the runs trained here")


if __name__ == "__main__":
    main()
