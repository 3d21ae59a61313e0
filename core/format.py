"""Plain-text formatting of events, metrics and durations, shared by the CLI and the app."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePath
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder text.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: Any) -> str:
    """`text` safe to show on a terminal: escape sequences and other control characters become visible `\\x1b`."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                       str(text))


def sentence(text: str | None) -> str:
    """`text` with its first letter capitalised: core words its lines in lower case, to follow a colon."""
    return text[:1].upper() + text[1:] if text else ""


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def format_seconds(seconds: float) -> str:
    """'0.4s', '12.3s' under a minute (where tenths matter), else as format_duration."""
    return f"{max(seconds, 0.0):.1f}s" if seconds < 59.95 else format_duration(seconds)


def format_metrics(m: dict[str, Any]) -> str:
    parts = [f"accuracy {m['accuracy']:.4f}"]
    if "accuracy_ci_low" in m:
        parts[0] += f" (95% CI {m['accuracy_ci_low']:.3f}-{m['accuracy_ci_high']:.3f})"
    parts += [f"{k} {m[k]:.4f}" for k in ("precision", "recall", "f1") if k in m]
    if m.get("loss") is not None and m.get("loss") == m.get("loss"):  # NaN != NaN: no loss to show
        parts.append(f"loss {m['loss']:.4f}")
    if m.get("ece") is not None:
        parts.append(f"ECE {m['ece']:.3f}")  # expected calibration error: 0 when confidence matches accuracy
    if m.get("note"):
        parts.append(f"({m['note']})")
    return "  ".join(parts)


def format_event(event) -> str | None:
    name = type(event).__name__
    if name == "StageChanged":
        return f"[{event.stage}] {event.detail}"
    if name == "TrainingStarted":
        s = event.samples
        return (f"training {event.model} on {event.device} ({event.precision}): {event.epochs} epoch{'s' if event.epochs != 1 else ''}, "
                f"{event.total_steps} steps, {format_batch(event.per_device_batch or event.effective_batch, event.processes, event.gradient_accumulation)}; "
                f"train/validation/test = {s['train']}/{s['validation']}/{s['test']}\nrun folder: {event.run_dir}")
    if name == "StepLogged":
        loss = f"{event.loss:.4f}" if event.loss is not None else "-"
        lr = f"{event.learning_rate:.2e}" if event.learning_rate is not None else "-"
        width = len(str(event.total_steps))
        return (f"step {event.step:>{width}}/{event.total_steps}  epoch {event.epoch:.2f}  loss {loss}  lr {lr}  "
                f"{event.samples_per_second:.1f} samples/s  elapsed {format_duration(event.elapsed)}  "
                f"ETA {format_duration(event.eta)}")
    if name == "EvalCompleted":
        label = {"validation": f"validation (epoch {event.epoch:.2f})", "baseline": "baseline before fine-tuning (test)",
                 "test": "test"}.get(event.split, event.split)
        return f"{label}: {format_metrics(event.metrics)}"
    if name == "Resumed":
        return f"resuming from step {event.step} ({event.checkpoint.rsplit('/', 1)[-1]})"
    if name == "CheckpointSaved":
        return f"checkpoint saved at step {event.step}"
    if name == "TrainingFinished":
        return f"finished: {event.train_samples_per_second:.1f} train samples/s, training took {format_duration(event.train_runtime)}"
    if name == "TrainingStopped":
        saved = event.saved if event.saved is not None else bool(event.test)
        if not saved:
            return f"stopped at step {event.step}; no model saved" if event.step else "stopped before training began; no model saved"
        return f"stopped at step {event.step}; model saved" + ("" if event.test else " (not tested)")
    if name == "TrainingFailed":
        return f"failed: {event.message}"
    if name == "Diagnostic":
        return f"coach ({event.kind}): {event.message}. {sentence(event.advice)}"
    return None


def format_kept(kept: dict[str, Any] | None) -> str | None:
    """Which evaluation a run's saved model comes from, in one line (None when the run did not say)."""
    if not isinstance(kept, dict) or not isinstance(kept.get("step"), int):
        return None
    epoch = kept.get("epoch")
    where = f"step {kept['step']}" + (f", epoch {epoch:.2f}" if isinstance(epoch, (int, float)) else "")
    score = kept.get("f1_macro")
    why = f" (the best validation macro F1, {score:.3f})" if isinstance(score, (int, float)) else ""
    return f"saved model: the checkpoint of {where}{why}"


STAGES_BEFORE_TRAINING = ("start", "data", "wait", "model", "tokenize", "baseline", "retry")


def stop_note(stage: str | None) -> str:
    """What a stop request does in `stage` (the run's latest StageChanged.stage)."""
    if stage == "lr-find":
        return "the learning-rate test ends at its next step; the curve so far is shown and saved"
    if stage in (None, "", *STAGES_BEFORE_TRAINING):
        return "it stops before training begins; no model will be saved"
    if stage == "test":
        return "it stops scoring the test split; the model is saved without test metrics"
    if stage == "save":
        return "it is saving its model and ends in a moment"
    return "it stops at its next step; the model so far will be evaluated, tested and saved"


def format_confusion(matrix: list[list[int]], names: list[str]) -> str:
    width = max(len(n) for n in names + ["true \\ pred"]) + 2
    lines = ["true \\ pred".ljust(width) + "".join(n.rjust(width) for n in names)]
    for name, row in zip(names, matrix):
        lines.append(name.ljust(width) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def format_batch(per_device: int, processes: int, accumulation: int) -> str:
    """The effective batch spelled out: per-device batch x processes x accumulation."""
    parts = [f"batch {per_device}"]
    if processes > 1:
        parts.append(f"{processes} processes")
    if accumulation > 1:
        parts.append(f"{accumulation} accumulation")
    total = per_device * processes * accumulation
    return " x ".join(parts) + (f" = {total}" if len(parts) > 1 else "")


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def one_line(text: str, width: int) -> str:
    """User text for a one-line display: whitespace collapsed, control characters made visible, clipped."""
    return clip(printable(" ".join(str(text).split())), width)


def format_time(timestamp: float) -> str:
    """A run's creation time as shown in lists."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def short_name(text: str) -> str:
    """The part of a model id, model folder or dataset path that tells runs apart in a list."""
    path = PurePath(text.rstrip("/")) if text else PurePath("?")
    name = path.name or text
    if name in ("model", "models", "checkpoint") and path.parent.name:
        name = path.parent.name  # a package's model/ folder: its parent says which model
    return name


def number(value: Any) -> str:
    """A setting's value as a person types it: 5e-5 and 1e-4 (not 5e-05 and 0.0001), 0.1, 3."""
    if not isinstance(value, float) or value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:g}" if isinstance(value, float) else str(value)
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
