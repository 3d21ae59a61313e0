"""F4's Errors tab: misclassified test reviews, most confident first; the selected one in full, explained word
by word (the run's model is loaded only while the tab is shown); Enter opens one in the console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from core.format import printable
from core.runs.layout import MODEL
from tui.safe import cell, plain
from tui.widgets.explanation import RunExplainer, explanation_text

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


class ErrorsPane(Vertical):
    """The count, the table and the selected review with its explanation."""

    DEFAULT_CSS = """
    ErrorsPane #errors-count { color: $text-muted; }
    ErrorsPane #errors { height: 1fr; }
    ErrorsPane #error-text { height: auto; max-height: 5; border-top: solid $primary 50%; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run: Path | None = None
        self.active = False  # the tab is shown: only then is a model loaded to explain
        self._explainer = RunExplainer()  # the run's model, loaded on first use
        self._explaining = ""  # the review whose explanation is awaited

    def compose(self) -> ComposeResult:
        yield Static(id="errors-count")
        yield ReportErrorsTable(id="errors")
        yield Static(id="error-text")

    def show(self, report: Any) -> None:
        """The mistakes of `report` (a core.runs.report.RunReport)."""
        self.run = report.path
        mistakes, n = report.misclassified, report.test_n
        if mistakes:
            text = (f"{len(mistakes)} of {n} test reviews misclassified" if n else f"{len(mistakes)} misclassified") + \
                   ", most confident first. Enter opens one in the prediction console."
        elif report.test and n:
            text = f"No test predictions to show: all {n} test reviews correct, or none were saved."
        else:
            text = "No test predictions: the run has not been tested yet."
        self.query_one("#errors-count", Static).update(text)
        self.query_one(ReportErrorsTable).show(mistakes)
        self.show_selected()

    def clear(self) -> None:
        self.run = None
        for selector in ("#errors-count", "#error-text"):
            self.query_one(selector, Static).update("")
        self.query_one(ReportErrorsTable).show([])

    def set_active(self, active: bool) -> None:
        self.active = active
        if active:
            self.show_selected()

    def show_selected(self) -> None:
        """The selected misclassified review in full, then (once computed) why the model got it wrong."""
        row = self.query_one(ReportErrorsTable).current
        text = str(row.get("text", "")) if row else ""
        self._explaining = text
        self.query_one("#error-text", Static).update(plain(text))
        if self.active and text and self.run is not None and (self.run / MODEL / "config.json").exists():
            self._explain(self.run, text)

    @on(DataTable.RowHighlighted, "#errors")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_selected()

    @on(DataTable.RowSelected, "#errors")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.query_one(ReportErrorsTable).current
        if row is not None and self.run is not None:
            self.app.send_to_console(str(row.get("text", "")), self.run)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-explain")
    def _explain(self, run: Path, text: str):
        return text, self._explainer.explain(run, text)

    @on(Worker.StateChanged)
    def _explained(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "report-explain" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        target = self.query_one("#error-text", Static)
        if event.state == WorkerState.ERROR:
            target.update(Text.assemble(printable(self._explaining), "\n",
                                        (printable(f"no explanation: {event.worker.error}"), "italic")))
            return
        text, explanation = event.worker.result
        if text == self._explaining:  # the cursor may have moved on
            target.update(Text.assemble(Text("Why the model said ", style="bold"),
                                        Text(explanation.prediction.label, style="bold"), ":\n",
                                        explanation_text(explanation)))
