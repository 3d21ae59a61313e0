"""How long an explanation takes: Integrated Gradients (core.explain) on 50-word reviews, beside a plain prediction.

    python bench/explain_latency.py [--model DIR_OR_RUN] [--data FILE] [--reviews 20] [--words 50]

Reviews are built from the data file's sentences, joined and cut to exactly --words words.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def reviews_of(texts: list[str], count: int, words: int) -> list[str]:
    """`count` reviews of exactly `words` words, from consecutive sentences."""
    pool = " ".join(texts).split()
    return [" ".join(pool[i * words:(i + 1) * words]) for i in range(min(count, len(pool) // words))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--reviews", type=int, default=20, help="reviews to explain")
    parser.add_argument("--words", type=int, default=50, help="words per review")
    args = parser.parse_args()
    require(args)
    import pandas as pd

    from core.explain import explain
    from core.predict import Predictor

    print(f"machine: {machine()}")
    predictor = Predictor(args.model)
    reviews = reviews_of(pd.read_csv(args.data)["text"].astype(str).tolist(), args.reviews, args.words)
    explain(predictor, reviews[0])  # warm-up: the console explains after its first prediction too
    predicted, explained, steps, deltas = [], [], [], []
    for text in reviews:
        t = time.perf_counter()
        predictor.predict([text])
        predicted.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = explain(predictor, text)
        explained.append(time.perf_counter() - t)
        steps.append(result.steps)
        change = sum(w.score for w in result.words)
        deltas.append(result.delta / max(abs(change), 1e-9))
    explained.sort()
    p50, p95 = statistics.median(explained), explained[int(0.95 * (len(explained) - 1))]
    print(table(
        ["measure", "value"],
        [[f"reviews of {args.words} words", str(len(reviews))],
         ["explain p50 (s)", f"{p50:.2f}"],
         ["explain p95 (s)", f"{p95:.2f}"],
         ["predict p50 (s)", f"{statistics.median(predicted):.3f}"],
         ["explain / predict (p50)", f"{p50 / statistics.median(predicted):.0f}x"],
         ["IG steps used (min-max)", f"{min(steps)}-{max(steps)}"],
         ["delta / attributed change, max", f"{max(deltas):.4f}"]],
    ))


if __name__ == "__main__":
    main()
