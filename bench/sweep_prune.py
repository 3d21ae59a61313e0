"""What pruning saves, and what a second worker buys: one 12-point random sweep, three ways.

    python bench/sweep_prune.py [--model DIR] [--data FILE] [--points 12] [--max-samples 1000]
    python bench/sweep_prune.py --replay RUNS_DIR     # pruners replayed on an unpruned sweep already made

The same 12 points (learning rate 1e-5 to 3e-4 on a log scale, 1 to 3 epochs, batch size 16 or 32; `--random 12`,
seed 42) on the MR sentences, swept by `sentitune sweep` in its own process three times, one after another:
without pruning (one worker), with `--prune` (one worker), and without pruning with `--workers 2`. For each:
optimizer steps spent (every run's last step, summed), the best validation macro F1 found, and wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def last_step(run_dir: Path) -> int:
    """The run's last optimizer step, from its events."""
    steps = [0]
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if isinstance(event.get("step"), int) and event.get("event") != "EvalCompleted":
            steps.append(event["step"])
    return max(steps)


def epochs_of(point: dict) -> list[float]:
    """A point's validation macro F1 after each epoch, as its run recorded them."""
    metrics = Path(point["run_dir"]) / "metrics.json" if point.get("run_dir") else None
    if metrics is None or not metrics.exists():
        return []
    return [e.get("f1_macro") for e in json.loads(metrics.read_text()).get("validation", [])]


def replay(points: list[dict]) -> list[list]:
    """Optuna's pruners replayed on an unpruned sweep's points, in order, one worker: each point reports its
    per-epoch scores as the study would see them, and stops (one step after the decision) where the pruner says.
    Rows: pruner, steps spent, share of the unpruned steps, best validation macro F1 among the points it kept."""
    import math

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    full = sum(p["steps"] for p in points)
    first_epochs = sum(math.ceil(p["steps"] / max(1, len(p["scores"]))) for p in points)
    pruners = {
        "median, 2 finished first (sentitune's --prune)": optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                                       n_min_trials=2),
        "median, 1 finished first": optuna.pruners.MedianPruner(n_startup_trials=1, n_min_trials=1),
        "successive halving, factor 3": optuna.pruners.SuccessiveHalvingPruner(min_resource=100, reduction_factor=3),
        "successive halving, factor 2": optuna.pruners.SuccessiveHalvingPruner(min_resource=100, reduction_factor=2),
        "Hyperband": optuna.pruners.HyperbandPruner(min_resource=100, max_resource=300, reduction_factor=3),
    }
    rows = []
    for name, pruner in pruners.items():
        study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
        spent, best = 0, float("nan")
        for point in points:
            trial, per_epoch, kept = study.ask(), point["steps"] / max(1, len(point["scores"])), True
            for epoch, value in enumerate(point["scores"], start=1):
                trial.report(value, epoch * 100)
                if trial.should_prune():
                    spent += math.ceil(epoch * per_epoch) + 1
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    kept = False
                    break
            if kept:
                spent += point["steps"]
                study.tell(trial, max(point["scores"]))
                best = max(point["scores"]) if math.isnan(best) else max(best, max(point["scores"]))
        rows.append([name, f"{spent:,}", f"{spent / full:.0%}", f"{best:.4f}"])
    rows.append(["(floor: every point stopped after its first epoch)", f"{first_epochs:,}", f"{first_epochs / full:.0%}",
                 "—"])
    return rows


def replay_folder(root: Path) -> None:
    from core.experiments.record import list_sweeps, read_sweep

    record = read_sweep(list_sweeps(root)[0])
    points = [{"steps": last_step(Path(p["run_dir"])), "scores": epochs_of(p)} for p in record["points"]
              if p.get("run_dir") and p.get("status") == "finished"]
    for point, p in zip(points, record["points"]):
        print(json.dumps({"settings": p["settings"], "steps": point["steps"], "scores": point["scores"]}))
    print(f"\n{len(points)} points, {sum(p['steps'] for p in points):,} steps unpruned, best "
          f"{max(max(p['scores']) for p in points):.4f}\n")
    print(table(["pruner", "steps", "of unpruned", "best val macro-F1 kept"], replay(points)))


def sweep(args, root: Path, *flags: str) -> tuple[dict, float]:
    from core.experiments.record import list_sweeps, read_sweep

    command = [sys.executable, "-m", "core.cli", "sweep", "--model", args.model, "--dataset", args.data,
               "--max-samples", str(args.max_samples), "--max-length", "64", "--seed", "42", "--random",
               str(args.points), "--grid", "learning_rate=1e-5:3e-4", "--grid", "epochs=1,2,3",
               "--grid", "batch_size=16,32", "--output-dir", str(root), *flags]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep failed: {done.stderr[-2000:]}")
    return read_sweep(list_sweeps(root)[0]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--replay", metavar="RUNS_DIR", help="only replay pruners on the unpruned sweep in RUNS_DIR")
    args = parser.parse_args()
    if args.replay:
        replay_folder(Path(args.replay))
        return
    require(args)
    from core.experiments.record import ranked, score

    print(f"machine: {machine()}")
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, flags in (("no pruning, 1 worker", ["--workers", "1"]), ("--prune, 1 worker", ["--prune", "--workers", "1"]),
                            ("no pruning, 2 workers", ["--workers", "2"])):
            root = Path(scratch) / name.replace(" ", "_").replace(",", "")
            record, seconds = sweep(args, root, *flags)
            for p in record["points"]:
                p["steps"] = last_step(Path(p["run_dir"])) if p.get("run_dir") else 0
                p["scores"] = epochs_of(p)
            steps = sum(p["steps"] for p in record["points"])
            best = ranked(record)[0]
            results[name] = (steps, score(best), seconds, record)
            statuses = [p["status"] for p in record["points"]]
            rows.append([name, f"{steps:,}", f"{score(best):.4f}",
                         ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["settings"].items()),
                         f"{statuses.count('pruned')}", f"{seconds:.0f}"])
            print(f"{name}: {steps} steps, best {score(best):.4f}, {seconds:.0f} s, {statuses}", flush=True)
    print(f"\n{args.points} points, MR sentences (--max-samples {args.max_samples}), 64 tokens\n")
    print(table(["sweep", "optimizer steps", "best val macro-F1", "best point", "pruned", "wall (s)"], rows))
    full, pruned = results["no pruning, 1 worker"], results["--prune, 1 worker"]
    print(f"\npruning spent {pruned[0] / full[0]:.0%} of the steps; best val macro-F1 {pruned[1]:.4f} against "
          f"{full[1]:.4f} ({pruned[1] - full[1]:+.4f})")
    print(f"2 workers: {results['no pruning, 2 workers'][2] / full[2]:.2f}x the wall time of 1")
    print("\nOptuna's pruners replayed on the unpruned sweep's per-epoch scores (one worker, in order):\n")
    print(table(["pruner", "steps", "of unpruned", "best val macro-F1 kept"],
                replay([p for p in full[3]["points"] if p["scores"]])))
    points = [p for p in full[3]["points"] if isinstance(p.get("val_f1_macro"), float)]
    if len(points) > 1:
        values = sorted(score(p) for p in points)
        print(f"spread of the {len(points)} points' val macro-F1 without pruning: {values[0]:.4f} to {values[-1]:.4f}")


if __name__ == "__main__":
    main()
