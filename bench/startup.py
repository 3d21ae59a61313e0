"""Time from launching `sentitune` to its first screen being ready for keys.

    python bench/startup.py [--repeats 5]

Each launch is a fresh Python process running the app headless; the time runs from just before the
process is spawned until the app's first screen has mounted and the pilot can press keys.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table  # noqa: E402

CHILD = """
import sys, time
from tui.app import create_app

async def ready(pilot):
    await pilot.pause()
    print(time.time(), flush=True)
    pilot.app.exit()

create_app(sys.argv[1]).run(headless=True, auto_pilot=ready, size=(100, 30))
"""


def launch(runs: str) -> float:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, runs], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    return float(out.stdout.strip().splitlines()[-1]) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        launch(runs)  # warm the file cache once
        times = [launch(runs) for _ in range(args.repeats)]
    print(table(["measure", "seconds"], [
        [f"first screen ready, median of {len(times)}", f"{statistics.median(times):.2f}"],
        ["slowest", f"{max(times):.2f}"],
    ]))


if __name__ == "__main__":
    main()
