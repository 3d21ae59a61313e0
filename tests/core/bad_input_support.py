"""What the bad-input table's cases are made of: the environment each one gets, and the case itself."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest


@dataclass
class Env:
    tmp: Path
    model: Path
    good: Path
    finished: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def runs(self) -> Path:
        return self.tmp / "runs"

    def train(self, *args, dataset: Path | None = None) -> list[str]:
        return ["train", "--model", str(self.model), "--dataset", str(dataset or self.good),
                "--output-dir", str(self.runs), *map(str, args)]

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def csv(self, name: str, frame: pd.DataFrame) -> Path:
        frame.to_csv(self.tmp / name, index=False)
        return self.tmp / name

    def run_copy(self, name: str = "copy", drop: tuple[str, ...] = ()) -> Path:
        """A copy of the finished run (so the shared one stays as it is), without the files in `drop`."""
        copy = self.tmp / name
        shutil.copytree(self.finished, copy, ignore=shutil.ignore_patterns(*drop) if drop else None)
        return copy

    def model_copy(self, drop: tuple[str, ...] = ()) -> Path:
        copy = self.tmp / "model-copy"
        shutil.copytree(self.model, copy, ignore=shutil.ignore_patterns(*drop) if drop else None)
        return copy


@dataclass
class Case:
    setup: Callable[[Env], list[str]]
    code: int
    says: str
    """In the one line on stderr (exit codes 1 and 2), or in stdout (exit code 0)."""
    after: Callable[[Env], None] | None = None
    """More checks of what is on disk afterwards."""
