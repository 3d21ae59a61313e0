"""Export a run's model to ONNX (optionally int8-quantized) for ONNX Runtime, checked against the PyTorch model.

The export folder is self-describing like a model folder: `model.onnx`, the tokenizer (its `model_max_length`
set to the length the run trained with), `config.json` with the label names, the run's `calibration.json`,
and `export.json` (quantized or not, versions, and how often its labels agree with the PyTorch model's).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelError, RunError
from core.files import read_json, write_json_atomic
from core.predict import Predictor, kept_step, model_dir_of, model_stamp
from core.runs import layout
from core.runs.store import Run

PIP_HINT = "pip install 'sentitune[onnx]'"
CHECK_LIMIT = 1000  # test reviews compared after export: enough to see a 1% disagreement, seconds on a CPU
# Above this many bytes of weights the graph goes beside model.onnx (protobuf files stop at 2 GiB).
EXTERNAL_DATA_BYTES = 1_800_000_000
EXAMPLE = ["an example review to trace the model with", "a shorter one"]  # two lengths: batch and length vary


@dataclass(frozen=True)
class ExportResult:
    path: Path
    quantized: bool
    size_bytes: int
    seconds: float
    checked: int
    """Test reviews both models labelled (0 for a model folder without a run's test split)."""
    agreement: float | None
    """The share of those reviews given the same label by the export and the PyTorch model."""

    def describe(self) -> str:
        kind = "int8 ONNX" if self.quantized else "ONNX"
        check = (f"; its labels agree with the PyTorch model's on {self.agreement:.1%} of {self.checked} test reviews"
                 if self.agreement is not None else "; no test split to compare it with the PyTorch model on")
        return f"{kind} model ({self.size_bytes / 1e6:.1f} MB) in {self.path} after {self.seconds:.0f} s{check}"


def onnx_missing() -> str | None:
    """The pip command to run when the exporter or ONNX Runtime is not installed, else None."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    return f"ONNX export needs {', '.join(missing)}: {PIP_HINT}" if missing else None


def default_destination(model_dir: Path) -> Path:
    """RUN/onnx for a run's model; a sibling `<folder>-onnx` for a bare model folder."""
    return model_dir.parent / layout.ONNX if model_dir.name == layout.MODEL else model_dir.with_name(
        model_dir.name + "-onnx")


def export_onnx(target: str | Path, dest: str | Path | None = None, quantize: bool = False,
                check_limit: int = CHECK_LIMIT) -> ExportResult:
    """Export the run or model folder `target` to `dest` (default RUN/onnx); an old export there is replaced
    only once the new one is complete."""
    started = time.monotonic()
    model_dir = model_dir_of(target)
    if model_dir.name == layout.MODEL and (model_dir.parent / layout.STATUS).is_file():
        from core.runs.control import check_not_held

        check_not_held(model_dir.parent)  # being resumed: its model is about to be replaced
    if (model_dir / layout.ONNX_MODEL).is_file():
        raise ModelError(f"{model_dir} is already an ONNX export; export the run folder it came from")
    if (missing := onnx_missing()) is not None:
        raise ModelError(missing)
    dest = Path(dest).expanduser() if dest is not None else default_destination(model_dir)
    if dest.exists() and not _replaceable(dest):
        raise ModelError(f"{dest} exists and holds more than an ONNX export; give an empty or new folder with --to "
                         "(nothing in it was touched)")
    source = Predictor(model_dir, device="cpu", calibrated=False)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")  # its own: two exports at once do not collide
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        _write_onnx(source, partial, quantize)
        source.tokenizer.model_max_length = source.max_length  # what the export truncates to, without the run
        source.tokenizer.save_pretrained(str(partial))
        source.model.config.save_pretrained(str(partial))
        if (model_dir / layout.CALIBRATION).is_file():
            shutil.copy2(model_dir / layout.CALIBRATION, partial / layout.CALIBRATION)
        checked, agreement = _agreement(source, partial, model_dir, check_limit)
        record = _record(source, quantize, checked, agreement)
        # A newer model saved later (a resume) makes this export stale: which evaluation it is, and its weights file.
        record["model_step"], record["model_stamp"] = kept_step(model_dir), model_stamp(model_dir)
        record["files"] = sorted(f.name for f in partial.iterdir()) + [layout.EXPORT_RECORD]
        write_json_atomic(partial / layout.EXPORT_RECORD, record)
        _replace(partial, dest)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelError(f"cannot write the export to {dest.parent}: {exc.strerror or exc}; free some space or "
                         "give another folder with --to") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in dest.iterdir() if f.name.startswith(layout.ONNX_MODEL))
    return ExportResult(dest, quantize, size, time.monotonic() - started, checked, agreement)


def _write_onnx(source: Predictor, folder: Path, quantize: bool) -> None:
    """model.onnx in `folder`: batch and length dynamic, logits out; int8 weights with `quantize`."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    model = source.model.float().eval()
    example = source.tokenizer(EXAMPLE, padding=True, return_tensors="pt")
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    fp32 = folder / (f"{layout.ONNX_MODEL}.fp32" if quantize else layout.ONNX_MODEL)
    try:
        with _quiet(), torch.inference_mode(False):
            torch.onnx.export(
                Logits(model), (example["input_ids"], example["attention_mask"]), str(fp32),
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}},
                dynamo=True, verbose=False, external_data=weights > EXTERNAL_DATA_BYTES,
            )
    except OSError:
        raise
    except Exception as exc:  # torch.export cannot trace every architecture
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot export {source.model.config.model_type} to ONNX: {first[:300]}") from None
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _quiet():
            # Per-channel scales and 7-bit weights: plain per-tensor int8 changed 2.7% of a MiniLM run's labels
            # on MR sentences, these 1.0% (bench/onnx_speed.py), at the same size and nearly the same speed.
            quantize_dynamic(str(fp32), str(folder / layout.ONNX_MODEL), weight_type=QuantType.QInt8,
                             per_channel=True, reduce_range=True)
        for leftover in folder.glob(f"{fp32.name}*"):
            leftover.unlink()


@contextmanager
def _quiet() -> Iterator[None]:
    """No warnings or log lines from the exporter and the quantizer: they log through the root logger and
    torch's own handlers, which the run-log capture does not reach."""
    from core.training.logs import capture_library_logs

    with capture_library_logs(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def _agreement(source: Predictor, folder: Path, model_dir: Path, limit: int) -> tuple[int, float | None]:
    """How many of the run's test reviews both models labelled, and the share they labelled alike."""
    run_dir = model_dir.parent if model_dir.name == layout.MODEL and (model_dir.parent / layout.CONFIG).is_file() else None
    texts = [r["text"] for r in Run(run_dir).test_predictions() if isinstance(r.get("text"), str)
             and r["text"].strip()][:limit] if run_dir is not None else []
    exported = Predictor(folder, calibrated=False)
    probe = texts or EXAMPLE  # a bare model folder: the export must at least run
    ours = [p.label for p in exported.predict(probe)]
    if not texts:
        return 0, None
    theirs = [p.label for p in source.predict(texts)]
    return len(texts), sum(a == b for a, b in zip(ours, theirs)) / len(texts)


def _record(source: Predictor, quantize: bool, checked: int, agreement: float | None) -> dict:
    import onnxruntime
    import torch

    return {"format": "onnx", "quantized": quantize, "max_length": source.max_length,
            "labels": source.label_names, "source": str(source.model_dir.resolve()),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "checked_reviews": checked, "label_agreement": agreement}


def _replaceable(dest: Path) -> bool:
    """True for an empty folder or an earlier export holding only the files its export.json lists: --to must
    never delete a student's other files."""
    if not dest.is_dir():
        return False
    entries = list(dest.iterdir())
    if not entries:
        return True
    try:
        files = read_json(dest / layout.EXPORT_RECORD).get("files")
    except (RunError, AttributeError):
        return False
    if not isinstance(files, list) or layout.ONNX_MODEL not in files:
        return False
    return all(e.is_file() and not e.is_symlink() and e.name in files for e in entries)


def _replace(partial: Path, dest: Path) -> None:
    """Put the finished export at `dest`; an earlier export there is removed only after the swap."""
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    partial.rename(dest)
    shutil.rmtree(old, ignore_errors=True)

