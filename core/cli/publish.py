"""Commands that hand a model to the rest of the ecosystem: export (ONNX) and push (the Hub)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli.output import say


def _target(args: argparse.Namespace, name: str) -> Path:
    from core.runs.store import resolve_run

    path = Path(getattr(args, name))
    return path if path.exists() else resolve_run(getattr(args, name), args.output_dir)


def cmd_export(args: argparse.Namespace) -> int:
    from core.errors import ModelError
    from core.export import export_onnx

    if not args.onnx:
        raise ModelError("say which format to export to: sentitune export RUN --onnx [--quantize]")
    target = _target(args, "target")
    from core.predict import model_dir_of
    from core.runs.control import check_not_held

    model_dir = model_dir_of(target)  # a run that has none, or is held: refused before anything is said
    if model_dir.name == "model" and (model_dir.parent / "status.json").is_file():
        check_not_held(model_dir.parent)
    if not args.json:
        say(f"exporting {target.name} to ONNX{' with int8 weights' if args.quantize else ''}…")
    result = export_onnx(target, dest=args.to, quantize=args.quantize)
    if args.json:
        print(json.dumps({"path": str(result.path), "quantized": result.quantized, "size_bytes": result.size_bytes,
                          "seconds": round(result.seconds, 2), "checked_reviews": result.checked,
                          "label_agreement": result.agreement}))
    else:
        say(f"wrote the {result.describe()}")
        say(f"predict with it: sentitune predict {result.path} \"a review\"")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from core.push import check_push, push_run

    target = _target(args, "run")
    check_push(target, args.repo)  # every refusal that needs no upload, before the message below
    if not args.json:
        say(f"uploading {target.name} to {args.repo}{' (private)' if args.private else ''}…")
    result = push_run(target, args.repo, private=args.private)
    if args.json:
        print(json.dumps({"repo": result.repo, "url": result.url, "files": result.files, "private": result.private}))
    else:
        say(f"uploaded {result.files} files to {result.url}")
    return 0
