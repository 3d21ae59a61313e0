"""Thread settings, measured: torch intra-op threads for training, and torch in a second thread.

    python bench/threads.py [--model DIR] [--data FILE] [--samples 700]

1. sentitune training with 1 and with 2 (all cores) torch threads, each in a fresh process.
2. A matmul loop in the main thread, then in a second thread of the same process, and in a thread of
   a fresh process: OpenMP threads left by torch work in one thread slow torch in another.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402

TRAIN = """
import json, sys, torch
from pathlib import Path
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(int(sys.argv[3]))
from core.config import TrainConfig
from core.runs.store import Run
from core.training.train import train
result = train(TrainConfig.from_dict(json.loads(sys.argv[2])), Path(sys.argv[4]))
print(Run(result.run_dir).metrics["train_samples_per_second"])
"""

MATMUL = """
import sys, threading, time, torch
x, w = torch.randn(64, 384), torch.randn(384, 1536)
def loop():
    for _ in range(50): x @ w
    start = time.perf_counter()
    for _ in range(3000): x @ w
    return time.perf_counter() - start
def in_thread():
    out = []
    t = threading.Thread(target=lambda: out.append(loop())); t.start(); t.join()
    return out[0]
if sys.argv[1] == "main-then-thread":
    print(loop(), in_thread())
else:
    print(in_thread())
"""


def run(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.strip().splitlines()[-1].split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--samples", type=int, default=700)
    args = parser.parse_args()
    require(args)
    from core.config import TrainConfig
    from core.training.model import cpu_threads

    config = TrainConfig(model=args.model, dataset=args.data, max_samples=math.ceil(args.samples / 0.7), epochs=1,
                         baseline=False, max_length=128)
    print(f"machine: {machine()}")
    repo = str(Path(__file__).resolve().parents[1])
    rows = []
    for threads in sorted({1, cpu_threads()}) * 2:
        with tempfile.TemporaryDirectory() as tmp:
            rate = run(TRAIN, repo, json.dumps(config.to_dict()), str(threads), tmp)[0]
        rows.append([f"training, {threads} torch thread(s)", f"{rate:.1f} samples/s"])
    main_s, second_s = run(MATMUL, "main-then-thread")
    fresh_s = run(MATMUL, "fresh-thread")[0]
    rows += [["matmul loop, main thread", f"{main_s:.2f} s"],
             ["same loop, second thread after it", f"{second_s:.2f} s"],
             ["same loop, thread of a fresh process", f"{fresh_s:.2f} s"]]
    print(table(["measure", "value"], rows))


if __name__ == "__main__":
    main()
