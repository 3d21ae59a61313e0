"""The prediction console's history: every prediction of this session, newest first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.safe import cell


class PredictHistory(DataTable):
    """A table of predictions (number, label, confidence, latency, review), newest on top."""

    DEFAULT_CSS = """
    PredictHistory { height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.predictions: list[Any] = []  # core.predict.Prediction, oldest first

    def on_mount(self) -> None:
        self.add_column("#", key="n")
        self.add_column("label", key="label")
        self.add_column("conf", key="conf")
        self.add_column("latency", key="latency")
        self.add_column("review", key="review")

    def add_predictions(self, items: Iterable[tuple[Any, str]]) -> None:
        """Add (prediction, latency text) pairs, in the order they were made."""
        width = max(24, self.size.width - 36)
        for prediction, latency in items:
            self.predictions.append(prediction)
            n = len(self.predictions)
            self.add_row(n, cell(prediction.label, 24), Text(f"{prediction.confidence:.1%}", justify="right"),
                         Text(latency, justify="right"), cell(prediction.text, width), key=str(n))
        self.sort("n", reverse=True)
        self.move_cursor(row=0, scroll=True)
