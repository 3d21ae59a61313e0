"""Training throughput with 1 process vs N processes (`accelerate launch`), side by side.

    python bench/scaling.py [--model DIR] [--data FILE] [--samples 700] [--processes 2]

Same model, data, seed, per-process batch 16 and 1 epoch. On a GPU machine each process gets a GPU;
on a CPU machine the processes share the cores (each gets cores / N torch threads) and synchronise
gradients over gloo, so expect no speed-up there: this measures what the extra processes cost.
Throughput is global (all processes): optimizer steps x effective batch / training seconds.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def run(args, processes: int, root: Path) -> dict:
    from core.runs.store import Run

    cmd = [sys.executable, "-m", "core.cli", "train", "--model", args.model, "--dataset", args.data,
           "--max-samples", str(math.ceil(args.samples / 0.7)), "--epochs", "1", "--max-length", "128",
           "--num-processes", str(processes), "--output-dir", str(root)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed: {out.stderr.strip().splitlines()[-1:]}")
    run_dir = Path(out.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    metrics = Run(run_dir).metrics
    return {"samples_per_s": metrics["train_samples_per_second"], "steps": metrics["global_step"],
            "test_acc": metrics["test"]["accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--samples", type=int, default=700)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    require(args)
    print(f"machine: {machine()}")
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, args.processes):
            results[n] = run(args, n, Path(tmp) / f"p{n}")
            r = results[n]
            rows.append([f"{n} process(es)", f"{r['samples_per_s']:.1f}", r["steps"], f"{r['test_acc']:.4f}"])
    print(table(["processes", "train samples/s (global)", "optimizer steps", "test acc"], rows))
    print(f"\n{args.processes} processes: {results[args.processes]['samples_per_s'] / results[1]['samples_per_s']:.2f}x "
          "the throughput of 1")


if __name__ == "__main__":
    main()
