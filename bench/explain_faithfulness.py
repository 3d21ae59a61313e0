"""Are explanations faithful? Delete the word an explanation scores highest and see whether the model's mind changes
more than when a random word is deleted; and how well calibrated the run's confidences are (ECE, with its interval).

    python bench/explain_faithfulness.py [--model DIR] [--data FILE] [--run RUN] [--samples 2000] [--reviews 50]

Without --run, a run is trained first (MiniLM offline by default, on the MR sentences: --samples reviews, 2 epochs,
128 tokens). Then, for --reviews test reviews of at least 5 words (the run's own test split), the predicted label's
log-odds (log p / (1 - p)) is measured on the review, on the review without its top-scored word (core.explain), and
on the review without a word drawn at random (seeded). A faithful explanation's top word moves the log-odds far
more than a random one.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def log_odds(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def without(words: list[str], position: int) -> str:
    return " ".join(w for i, w in enumerate(words, 1) if i != position)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--run", help="an existing run folder (skips training)")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--reviews", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    from core.explain import explain
    from core.predict import Predictor

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(args.run) if args.run else None
        if run is None:
            require(args)
            from core.config import TrainConfig
            from core.training.train import train

            config = TrainConfig(model=args.model, dataset=args.data, max_samples=args.samples, epochs=2,
                                 max_length=128, learning_rate=7.6e-5, seed=args.seed, baseline=False)
            run = train(config, Path(scratch) / "runs").run_dir
            print(f"trained {args.model} on {args.samples} reviews of {args.data}, 2 epochs, lr 7.6e-5")
        metrics = json.loads((run / "metrics.json").read_text())
        rows = [json.loads(line) for line in (run / "test_predictions.jsonl").read_text().splitlines()]
        texts = [r["text"] for r in rows if len(r["text"].split()) >= 5][:args.reviews]
        predictor, rng = Predictor(run), random.Random(args.seed)
        top_drops, random_drops, top_flips, random_flips = [], [], 0, 0
        for text in texts:
            explanation = explain(predictor, text)
            label = explanation.prediction.label
            words = [w.word for w in explanation.words]
            before = log_odds(explanation.prediction.probabilities[label])
            top = max(explanation.words, key=lambda w: w.score)
            other = rng.choice([w for w in explanation.words if w.position != top.position])
            for position, drops in ((top.position, top_drops), (other.position, random_drops)):
                after = predictor.predict(without(words, position))[0]
                drops.append(before - log_odds(after.probabilities[label]))
                if after.label != label:
                    if drops is top_drops:
                        top_flips += 1
                    else:
                        random_flips += 1
        n = len(texts)
        print(f"\n{n} test reviews of at least 5 words; the predicted label's log-odds before and after deleting "
              "one word\n")
        print(table(["word deleted", "mean log-odds drop", "median", "label flips"], [
            ["the top-scored word", f"{statistics.mean(top_drops):.2f}", f"{statistics.median(top_drops):.2f}",
             f"{top_flips}/{n}"],
            ["a random word", f"{statistics.mean(random_drops):.2f}", f"{statistics.median(random_drops):.2f}",
             f"{random_flips}/{n}"],
        ]))
        wins = sum(a > b for a, b in zip(top_drops, random_drops))
        print(f"\nthe top word's deletion moved the label more than the random word's in {wins}/{n} reviews")
        test, calibration = metrics.get("test") or {}, metrics.get("calibration") or {}
        if "ece" in test:
            interval = (f" (95% CI {test['ece_ci_low']:.1%}-{test['ece_ci_high']:.1%})"
                        if "ece_ci_low" in test else "")
            print(f"\ntest ECE {test['ece']:.1%}{interval} on {test['n']} reviews; calibration: "
                  f"{calibration.get('reason', 'off')}")


if __name__ == "__main__":
    main()
