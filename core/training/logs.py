"""Send transformers/datasets logging and Python warnings to the run's train.log, never the terminal."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIBRARY_LOGGERS = ("transformers", "datasets", "accelerate", "huggingface_hub", "torch", "py.warnings", "sentitune",
                   "trackio", "wandb")
VERBOSE_LOGGERS = ("transformers", "datasets", "sentitune")  # their INFO lines belong in train.log
log = logging.getLogger("sentitune")


class RunLogHandler(logging.Handler):
    """Buffers records until the run folder exists, then appends them to its train.log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._buffer: list[str] = []
        self._fh = None

    def attach(self, path: str | Path) -> None:
        self.acquire()
        try:
            self._fh = open(path, "a", encoding="utf-8")
            for line in self._buffer:
                self._fh.write(line + "\n")
            self._fh.flush()
            self._buffer.clear()
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a bad log call must never break training
            return
        if self._fh is None:
            self._buffer.append(line)
        else:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        super().close()


_lock = threading.Lock()
_depth = 0  # how many captures are open (a run training while the app loads a model, say)
_saved: dict = {}


def _begin() -> None:
    """Turn the libraries' own terminal output off (first capture only).

    `datasets` is not imported for this (a prediction never needs it, and it costs a second to import): when a
    run imports it later, it starts with its progress bars off, for the rest of the process.
    """
    import transformers

    datasets = sys.modules.get("datasets")
    if datasets is None:
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

    _saved["levels"] = []
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        _saved["levels"].append((logger, logger.level, logger.propagate))
        logger.propagate = False
        # torch's own INFO output (inductor, dynamo) is noise; only lower the levels we want in full.
        if name in VERBOSE_LOGGERS and (logger.level == logging.NOTSET or logger.level > logging.INFO):
            logger.setLevel(logging.INFO)
    _saved["bars"] = (transformers.utils.logging.is_progress_bar_enabled(),
                      datasets is not None and datasets.utils.logging.is_progress_bar_enabled())
    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.disable_progress_bar()
    if datasets is not None:
        datasets.utils.logging.disable_progress_bar()
    logging.captureWarnings(True)


def _end() -> None:
    """Give the libraries their terminal output back (last capture only)."""
    import transformers

    logging.captureWarnings(False)
    transformers.utils.logging.enable_default_handler()
    if _saved["bars"][0]:
        transformers.utils.logging.enable_progress_bar()
    if _saved["bars"][1]:
        sys.modules["datasets"].utils.logging.enable_progress_bar()
    for logger, level, propagate in _saved["levels"]:
        logger.setLevel(level)
        logger.propagate = propagate


@contextmanager
def capture_library_logs() -> Iterator[RunLogHandler]:
    """Route library logs and warnings to a RunLogHandler for the duration.

    Captures nest and may overlap across threads: the libraries' terminal output stays off until the
    last one ends, and each capture's handler receives records only while it is open.
    """
    global _depth
    handler = RunLogHandler()
    with _lock:
        if _depth == 0:
            _begin()
        _depth += 1
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).addHandler(handler)
    try:
        yield handler
    finally:
        with _lock:
            for name in LIBRARY_LOGGERS:
                logging.getLogger(name).removeHandler(handler)
            _depth -= 1
            if _depth == 0:
                _end()
        handler.close()
