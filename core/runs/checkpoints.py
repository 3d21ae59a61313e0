"""Find the last checkpoint of a run that was written completely."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import RunError
from core.runs import layout

# What the Trainer writes into a checkpoint; trainer_state.json comes last, so its presence (and
# validity) says the rest is there too.
REQUIRED = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def checkpoint_step(path: Path) -> int:
    """The optimizer step a `checkpoint-<step>` folder was written at."""
    return int(Path(path).name.rsplit("-", 1)[-1])


def is_complete(checkpoint: Path) -> bool:
    """True when every file needed to resume exists and the trainer state parses."""
    if not all((checkpoint / name).exists() for name in REQUIRED):
        return False
    if not any(checkpoint.glob("*.safetensors")) and not any(checkpoint.glob("*.bin")):
        return False
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return False
    return True


def last_complete_checkpoint(run_dir: str | Path) -> Path:
    """The newest complete checkpoint; a half-written one (killed while saving) is skipped."""
    folder = Path(run_dir) / layout.CHECKPOINTS
    candidates = sorted(
        (p for p in folder.glob("checkpoint-*") if p.name.rsplit("-", 1)[-1].isdigit()),
        key=lambda p: int(p.name.rsplit("-", 1)[-1]),
        reverse=True,
    ) if folder.is_dir() else []
    for checkpoint in candidates:
        if is_complete(checkpoint):
            return checkpoint
    raise RunError(
        f"run {Path(run_dir).name} has no complete checkpoint to resume from "
        "(checkpoints are written at the end of each epoch); start a new run instead"
    )


def has_complete_checkpoint(run_dir: str | Path) -> bool:
    """Whether a run can be resumed."""
    try:
        last_complete_checkpoint(run_dir)
    except RunError:
        return False
    return True
