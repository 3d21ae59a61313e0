"""The table of misclassified test reviews: most confident mistakes first, Enter opens one in the console."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable

from tui.safe import cell

TEXT_WIDTH = 200  # the table scrolls sideways; the full review shows under it


class ReportErrorsTable(DataTable):
    """Misclassified reviews with their confidence, true and predicted labels."""

    BINDINGS = [Binding("enter", "select_cursor", "Open in console")]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.rows_data: list[dict[str, Any]] = []

    def on_mount(self) -> None:
        self.add_columns("confidence", "true", "predicted", "review")

    def show(self, rows: list[dict[str, Any]]) -> None:
        """Replace the listed mistakes."""
        self.rows_data = list(rows)
        self.clear()
        for i, row in enumerate(self.rows_data):
            self.add_row(f"{_number(row.get('confidence')):.1%}", cell(row.get("label", ""), 24),
                         cell(row.get("predicted", ""), 24), cell(row.get("text", ""), TEXT_WIDTH), key=str(i))

    @property
    def current(self) -> dict[str, Any] | None:
        """The mistake under the cursor."""
        if not self.rows_data or not 0 <= self.cursor_row < len(self.rows_data):
            return None
        return self.rows_data[self.cursor_row]


def _number(value: Any) -> float:
    """A saved confidence as a float; 0 when the file holds something else."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0
