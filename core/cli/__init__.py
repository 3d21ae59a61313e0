"""The headless command line: train, predict, evaluate, data, runs, attach, stop, resume (no Textual import)."""

from core.cli.main import main

__all__ = ["main"]
