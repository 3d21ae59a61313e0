"""Training throughput with the app's event path attached vs headless.

    python bench/ui_overhead.py [--model DIR] [--data FILE] [--samples 700] [--rounds 3]

"headless" is core.training.train.train with no listener. "app" starts the same run from a headless
SentituneApp on its training dashboard, so every event becomes a Textual message, is folded into the
dashboard state and redrawn (charts included). Rounds alternate the order (A B, B A) to spread drift.
Each measurement runs in a fresh process: torch's OpenMP threads left spinning by earlier work in
another thread of the same process would otherwise slow whichever runs second.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def headless(config, root: Path) -> float:
    from core.runs.store import Run
    from core.training.train import train

    result = train(config, root)
    return Run(result.run_dir).metrics["train_samples_per_second"]


def with_app(config, root: Path) -> float:
    from core.runs.store import Run
    from tui.app import create_app

    async def go() -> float:
        app = create_app(root, config, detect_device=False)
        async with app.run_test(size=(100, 30)) as pilot:
            app.start_training()
            await app.workers.wait_for_complete()
            await pilot.pause()
            return Run(app.progress.run_dir).metrics["train_samples_per_second"]

    return asyncio.run(go())


def measure(path: str, config) -> float:
    """One measurement in a fresh Python process; returns train samples/s."""
    import json
    import subprocess

    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from bench.ui_overhead import headless, with_app; from core.config import TrainConfig;"
        "config = TrainConfig.from_dict(json.loads(sys.argv[2])); fn = {'headless': headless, 'app': with_app}[sys.argv[3]];"
        "print(fn(config, Path(sys.argv[4])))"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parents[1]),
                              json.dumps(config.to_dict()), path, tmp], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--samples", type=int, default=700, help="training samples")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require(args)
    from core.config import TrainConfig

    config = TrainConfig(model=args.model, dataset=args.data, max_samples=math.ceil(args.samples / 0.7), epochs=1,
                         baseline=False, max_length=128)
    print(f"machine: {machine()}")
    rates: dict[str, list[float]] = {"headless": [], "app": []}
    for r in range(args.rounds):
        order = ["headless", "app"] if r % 2 == 0 else ["app", "headless"]
        for name in order:
            rates[name].append(measure(name, config))
            print(f"round {r + 1} {name}: {rates[name][-1]:.1f} samples/s", flush=True)
    import statistics

    mean = {k: statistics.mean(v) for k, v in rates.items()}
    print(table(["path", "train samples/s (mean of rounds)", "all rounds"],
                [[k, f"{mean[k]:.1f}", ", ".join(f"{x:.1f}" for x in v)] for k, v in rates.items()]))
    print(f"\napp event path: {mean['app'] / mean['headless']:.1%} of headless throughput")


if __name__ == "__main__":
    main()
