"""PyTorch vs ONNX Runtime vs ONNX int8 on the CPU: one-review latency, batch throughput, size, label agreement.

    python bench/onnx_speed.py [--model RUN_OR_MODEL_DIR] [--data FILE] [--repeats 200] [--batch 1000]

The model (best a finished run: `sentitune train ...`) is exported twice with `core.export.export_onnx` into a
temporary folder, then the three are timed one after another in this process through the same
`core.predict.Predictor` path the console and `sentitune predict` use.
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


def measure(predictor, texts: list[str], repeats: int, batch: int) -> dict:
    predictor.predict(texts[:5])  # warm-up
    single = []
    for text in texts[:repeats]:
        t = time.perf_counter()
        predictor.predict([text])
        single.append((time.perf_counter() - t) * 1000)
    single.sort()
    t = time.perf_counter()
    labels = [p.label for p in predictor.predict(texts[:batch])]
    seconds = time.perf_counter() - t
    return {"p50": statistics.median(single), "p95": single[int(0.95 * (len(single) - 1))],
            "throughput": len(labels) / seconds, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=200, help="single-review predictions to time")
    parser.add_argument("--batch", type=int, default=1000, help="reviews predicted as one batch list")
    args = parser.parse_args()
    require(args)
    import pandas as pd

    from core.export import export_onnx
    from core.predict import Predictor, model_dir_of

    print(f"machine: {machine()}")
    texts = pd.read_csv(args.data)["text"].astype(str).tolist()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"PyTorch": model_dir_of(args.model)}
        for name, quantize in (("ONNX", False), ("ONNX int8", True)):
            result = export_onnx(args.model, dest=Path(tmp) / name.replace(" ", "-"), quantize=quantize)
            print(f"exported {name} in {result.seconds:.0f} s; test-split agreement: {result.agreement}")
            folders[name] = result.path
        base = None
        for name, folder in folders.items():
            start = time.perf_counter()
            predictor = Predictor(folder)
            load = time.perf_counter() - start
            m = measure(predictor, texts, args.repeats, args.batch)
            size = sum(f.stat().st_size for f in folder.iterdir() if f.suffix in (".onnx", ".safetensors", ".bin"))
            base = base or m
            agree = sum(a == b for a, b in zip(m["labels"], base["labels"])) / len(m["labels"])
            rows.append([name, f"{size / 1e6:.1f}", f"{load:.2f}", f"{m['p50']:.1f}", f"{m['p95']:.1f}",
                         f"{m['throughput']:.0f}", f"{m['throughput'] / base['throughput']:.2f}x", f"{agree:.1%}"])
    print(table(["model", "size (MB)", "load (s)", "one review p50 (ms)", "p95 (ms)",
                 f"batch of {args.batch} (reviews/s)", "throughput vs PyTorch", "labels as PyTorch's"], rows))


if __name__ == "__main__":
    main()
