"""The default-shaped job through sentitune on this machine's GPU (or CPU), and what a student then does with it.

    python bench/gpu_job.py --model DIR --data FILE [--samples 3500] [--epochs 3] [--max-length 256]

Reports, as Markdown for BENCHMARKS.md: the device, the precision and TF32 state the run chose, the run's phase
table (metrics.json `phases`: where the wall time from Start to saved model went), peak GPU memory, and the
latency of what comes after training on the same device: one prediction, a batch of 1,000, one explanation, and the
ONNX export (CPU-side, as `sentitune export` runs).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--samples", type=int, default=3500, help="training reviews (70%% of the rows used)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()

    import pandas as pd
    import torch

    from core.config import TrainConfig
    from core.runs.store import Run
    from core.training.model import choose_precision, resolve_device, tf32_available
    from core.training.phases import NAMES
    from core.training.train import train

    device = resolve_device("auto")
    config = TrainConfig(model=args.model, dataset=args.data, max_samples=math.ceil(args.samples / 0.7),
                         epochs=args.epochs, max_length=args.max_length)
    print(f"## sentitune on {machine()}\n")
    print(f"device {device}; precision {choose_precision('auto', device)}; "
          f"TF32 for float32 work: {'on' if tf32_available(device) else 'off (not an Ampere-or-newer GPU)'}\n")
    with tempfile.TemporaryDirectory() as out:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        result = train(config, Path(out) / "runs")
        metrics = Run(result.run_dir).metrics
        phases = metrics["phases"]
        rows = [[NAMES.get(k, k), f"{v:.2f}", f"{v / phases['wall']:.0%}"] for k, v in phases.items() if k != "wall"]
        print(table(["stage", "seconds", "share"], rows + [["**total (Start to saved model)**",
                                                             f"**{phases['wall']:.2f}**", ""]]))
        print(f"\ntest accuracy {metrics['test']['accuracy']:.3f}, F1 {metrics['test']['f1']:.3f}; "
              f"{metrics['train_samples_per_second']:.0f} training samples/s")
        if device == "cuda":
            print(f"peak GPU memory of the run: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated, "
                  f"{torch.cuda.max_memory_reserved() / 2**30:.2f} GiB reserved\n")
        texts = pd.read_csv(args.data)["text"].astype(str).tolist()
        print(table(["after training", "seconds"], _after(result.run_dir, texts, device)))


def _after(run_dir: Path, texts: list[str], device: str) -> list[list]:
    """Latency of one prediction (median of 20), a batch of 1,000, one explanation, and the ONNX export."""
    from core.explain import explain
    from core.predict import Predictor

    predictor = Predictor(run_dir)
    predictor.predict(texts[:8])  # warm: the first call pays for kernels and allocations
    one = []
    for text in texts[:20]:
        started = time.perf_counter()
        predictor.predict(text)
        one.append(time.perf_counter() - started)
    rows = [[f"one prediction on {device} (median of 20)", f"{statistics.median(one):.4f}"]]
    started = time.perf_counter()
    predictor.predict(texts[:1000], batch_size=64)
    rows.append([f"1,000 predictions on {device}", f"{time.perf_counter() - started:.2f}"])
    started = time.perf_counter()
    explained = explain(predictor, max(texts[:200], key=len))
    rows.append([f"one explanation on {device} ({explained.steps} steps, longest of 200 reviews)",
                 f"{time.perf_counter() - started:.2f}"])
    try:
        from core.export import export_onnx

        started = time.perf_counter()
        export_onnx(run_dir)
        rows.append(["ONNX export (CPU, with its agreement check)", f"{time.perf_counter() - started:.2f}"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime or onnxscript missing on the machine: said, not fatal
        rows.append([f"ONNX export: not run ({type(exc).__name__}: {str(exc)[:80]})", "—"])
    return rows


if __name__ == "__main__":
    main()
