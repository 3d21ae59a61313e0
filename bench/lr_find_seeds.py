"""Does lr-find suggest something, and the same thing, from seed to seed? The range test at 100 steps (20 a decade,
the old default) and at its default (50 a decade, 250 steps), on the MR sentences, over 5 seeds.

    python bench/lr_find_seeds.py [--model DIR] [--data FILE] [--max-samples 2000] [--max-length 128]

Each test is `core.experiments.lr_find.find_learning_rate` with train's settings (batch size 16) and only the seed
and the step count changed; the fall is that of the smoothed loss from its first tenth to its lowest point.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--max-samples", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    args = parser.parse_args()
    require(args)
    from core.config import TrainConfig
    from core.experiments.lr_find import STEPS, find_learning_rate

    print(f"machine: {machine()}")
    rows, found = [], {100: [], STEPS: []}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in [int(s) for s in args.seeds.split(",")]:
            config = TrainConfig(model=args.model, dataset=args.data, max_samples=args.max_samples,
                                 max_length=args.max_length, seed=seed)
            for steps in (100, STEPS):
                f = find_learning_rate(config, scratch, steps=steps)
                start = max(1, len(f.losses) // 10)
                fall = 1 - min(f.losses) / f.losses[start]
                found[steps].append(f.suggested_learning_rate)
                rows.append([seed, steps, f"{fall:.1%}", f"{f.suggested_learning_rate:.2g}" if f.suggested_learning_rate
                             else "none", f"{f.lowest_loss_learning_rate:.2g}" if f.lowest_loss_learning_rate else "—",
                             f"{f.seconds:.0f}"])
                print(rows[-1], flush=True)
    print(f"\nMR sentences, --max-samples {args.max_samples}, --max-length {args.max_length}, batch 16\n")
    print(table(["seed", "steps", "loss fell", "suggested", "lowest loss at", "seconds"], rows))
    for steps, values in found.items():
        given = [v for v in values if v]
        spread = f", median {statistics.median(given):.2g}, {min(given):.2g} to {max(given):.2g}" if given else ""
        print(f"{steps} steps: a suggestion at {len(given)} of {len(values)} seeds{spread}")


if __name__ == "__main__":
    main()
