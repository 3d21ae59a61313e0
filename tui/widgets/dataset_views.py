"""Views of a loaded dataset: sample rows of one split and the label balance per split."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual import events
from textual.widgets import DataTable

from core.format import printable
from tui.safe import cell

LABEL_WIDTH = 24  # longer label names are clipped, so the text keeps most of the width


class SampleRows(DataTable):
    """The first rows of one split (label, text), the text on one line, clipped to the table's width."""

    LIMIT = 200

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._frame: Any = None
        self._names: list[str] = []
        self._width = 0

    def show(self, frame: Any, label_names: list[str]) -> None:
        """Show `frame` (a split with `text` and integer `label` columns)."""
        same = frame is self._frame
        self._frame, self._names = frame, label_names
        self._fill(keep_cursor=same)
        # Shown while the loading overlay still covers the table, the width may be a placeholder's:
        # fill again once the layout has settled.
        self.call_after_refresh(self._refill_if_resized)

    def _refill_if_resized(self) -> None:
        if self._frame is not None and self.size.width != self._width:
            self._fill()

    def text_at(self, row: int) -> str | None:
        """The whole review in shown row `row`."""
        if self._frame is None or not 0 <= row < min(len(self._frame), self.LIMIT):
            return None
        return str(self._frame["text"].iloc[row])

    def on_resize(self, event: events.Resize) -> None:
        if self._frame is not None and event.size.width != self._width:
            self._fill()

    def _fill(self, keep_cursor: bool = True) -> None:
        """Fill the table at its current width; a refill for a new width keeps the highlighted row."""
        row = self.cursor_row if keep_cursor and self.row_count else 0
        self._width = self.size.width
        label_width = min(LABEL_WIDTH, max(len(printable(n)) for n in [*self._names, "label"]))
        # Two cells of padding per column and room for the vertical scrollbar.
        text_width = max(12, self._width - label_width - 4 - 2)
        self.clear(columns=True)
        self.add_column("label", width=label_width, key="label")
        self.add_column("text", width=text_width, key="text")
        rows = self._frame.head(self.LIMIT)
        self.add_rows(
            (cell(self._names[int(label)], label_width), cell(text, text_width))
            for text, label in zip(rows["text"].tolist(), rows["label"].tolist())
        )
        if 0 < row < self.row_count:
            self.move_cursor(row=row, animate=False)


def balance_table(stats: Any) -> Table:
    """Rows and label counts (with shares) per split, from core.data.stats.DataStats."""
    names = list(next(iter(stats.balance.values())))
    table = Table(box=None, padding=(0, 1), header_style="bold", expand=False)
    table.add_column("split")
    table.add_column("rows", justify="right")
    for name in names:
        table.add_column(cell(name), justify="right")
    for split, counts in stats.balance.items():
        total = stats.rows[split]
        shares = [f"{counts[n]} ({counts[n] / total:.0%})" if total else "0" for n in names]
        table.add_row(split, str(total), *shares)
    return table
