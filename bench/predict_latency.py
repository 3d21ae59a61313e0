"""The prediction console's path: latency of one review (p50 / p95) and reviews/s for a batch file.

    python bench/predict_latency.py [--model DIR_OR_RUN] [--data FILE] [--repeats 200] [--batch 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=200, help="single-review predictions to time")
    parser.add_argument("--batch", type=int, default=1000, help="reviews in the batch file")
    args = parser.parse_args()
    require(args)
    import pandas as pd

    from core.predict import Predictor
    from core.review_files import read_reviews

    print(f"machine: {machine()}")
    start = time.perf_counter()
    predictor = Predictor(args.model)
    load = time.perf_counter() - start
    texts = pd.read_csv(args.data)["text"].astype(str).tolist()
    predictor.predict(texts[:5])  # warm-up, as the console's first prediction after loading
    single = []
    for text in texts[: args.repeats]:
        t = time.perf_counter()
        predictor.predict([text])
        single.append((time.perf_counter() - t) * 1000)
    single.sort()
    p50 = statistics.median(single)
    p95 = single[int(0.95 * (len(single) - 1))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.txt"
        path.write_text("\n".join(texts[: args.batch]) + "\n")
        t = time.perf_counter()
        batch, _ = read_reviews(path)
        predictor.predict(batch)
        batch_seconds = time.perf_counter() - t
    print(table(
        ["measure", "value"],
        [["model load (s)", f"{load:.2f}"],
         [f"one review p50 (ms, {len(single)} reviews)", f"{p50:.1f}"],
         ["one review p95 (ms)", f"{p95:.1f}"],
         [f"batch file of {len(batch)} reviews (reviews/s)", f"{len(batch) / batch_seconds:.0f}"]],
    ))


if __name__ == "__main__":
    main()
