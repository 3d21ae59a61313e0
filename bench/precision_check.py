"""Mixed precision against fp32 on the same model: the test scores a GPU run recorded (evaluated in
bf16/fp16) next to `sentitune evaluate` (the Predictor, in fp32) on the same test reviews.

    python bench/precision_check.py [--model DIR] [--data FILE] [--samples 1000] [--max-length 128]

On a CPU both are fp32 and must agree exactly; on a GPU the difference is what mixed precision costs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_args, machine, require, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--samples", type=int, default=1000, help="training samples (default 1000)")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    require(args)

    from core.config import TrainConfig
    from core.evaluate import evaluate_run
    from core.predict import Predictor
    from core.runs.store import Run
    from core.training.train import train

    config = TrainConfig(model=args.model, dataset=args.data, max_samples=math.ceil(args.samples / 0.7), epochs=1,
                         max_length=args.max_length, baseline=False)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(train(config, Path(tmp)).run_dir)
        precision = run.config_record["precision"]
        recorded = run.metrics["test"]
        fp32 = evaluate_run(run)
        saved = run.test_predictions()
        probs = Predictor(run.path).predict([r["text"] for r in saved])
        agree = sum(p.label == r["predicted"] for p, r in zip(probs, saved)) / len(saved)
        gap = max(abs(p.probabilities[r["predicted"]] - r["confidence"]) for p, r in zip(probs, saved))
    print(table(["evaluated in", "test accuracy", "test F1"], [
        [f"{precision} (during training)", f"{recorded['accuracy']:.4f}", f"{recorded['f1']:.4f}"],
        ["fp32 (sentitune evaluate)", f"{fp32['accuracy']:.4f}", f"{fp32['f1']:.4f}"],
    ]))
    print(json.dumps({"precision": precision, "reviews": len(saved), "same_label_share": agree,
                      "largest_confidence_gap": gap,
                      "accuracy_difference_points": (recorded["accuracy"] - fp32["accuracy"]) * 100}))


if __name__ == "__main__":
    main()
