"""Shared fixtures: a tiny offline model, generated review files, and one trained run reused by many tests."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from tests.tiny import build_tiny_model, reviews_frame

# The apps under test draw into a headless buffer nobody looks at: 10 frames a second instead of 60 keeps every
# screen's content the same and spares the CPU two workers share. The snapshot plugin imports Textual before this
# file runs, so its screen module's update period is set too (Textual reads TEXTUAL_FPS once, at import).
os.environ.setdefault("TEXTUAL_FPS", "10")
_screen = sys.modules.get("textual.screen")
if _screen is not None:
    _screen.UPDATE_PERIOD = 1 / int(os.environ["TEXTUAL_FPS"])

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers share the cores: one thread each (child processes inherit it), or torch's thread
    # pools oversubscribe the cores and everything slows down.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    reviews_frame(300).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def tiny_config(tiny_model, reviews_csv):
    """A config that trains the tiny model to high accuracy in a couple of seconds."""
    from core.config import TrainConfig

    return TrainConfig(
        model=str(tiny_model), dataset=str(reviews_csv), epochs=3, batch_size=8,
        learning_rate=5e-3, max_length=64, eval_batch_size=32,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_config):
    """(TrainResult, events received by the listener) of one finished run."""
    from core.training.train import train

    events = []
    root = tmp_path_factory.mktemp("runs")
    result = train(tiny_config.replace(logging_steps=5), root, on_event=events.append, stop_event=threading.Event())
    return result, events


@pytest.fixture(autouse=True)
def _reap_detached_runs(tmp_path):
    """Kill training processes a failed test left running in its folder, so they cannot slow later tests."""
    yield
    import json
    import os
    import signal

    for status in tmp_path.glob("**/status.json"):
        try:
            data = json.loads(status.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("status") in ("running", "starting"):
            for key in ("pid", "child_pid"):
                pid = data.get(key)
                if not pid or pid == os.getpid() or not _is_training_process(pid):
                    continue
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def _is_training_process(pid) -> bool:
    """Only ever kill sentitune's own training processes."""
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as fh:
            return b"core.cli" in fh.read()
    except (OSError, ValueError):
        return False
