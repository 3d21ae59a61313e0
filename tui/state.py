"""Plain containers for what the app shares between screens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)  # compared by identity: comparing DataFrames raises
class LoadedDataset:
    """A dataset loaded for preview: core's PreparedData, its DataStats, and why token stats may be missing."""

    data: Any  # core.data.clean.PreparedData (typed loosely so importing this module stays cheap)
    stats: Any  # core.data.stats.DataStats
    source: str
    token_note: str | None = None
    config: Any = None  # the TrainConfig it was loaded with, to tell when the preview is out of date

    @property
    def rows(self) -> int:
        return self.data.cleaning.rows_clean
