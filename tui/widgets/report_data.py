"""F4's Data tab: the data doctor (core.doctor) on the selected run: the suspicious rows with their reason, the
highlighted one in full with its explanation, a cartography chart (confidence against variability, flagged rows marked), y / n to accept
or reject each suggestion, w to write the cleaned copy and open F2 with it as the dataset, and f to judge the training
labels out of sample (core.folds: FOLDS fold models, progress on the count line; f again stops them)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from core.format import printable
from tui.safe import cell, notify_error
from tui.widgets.explanation import RunExplainer, explanation_text

TEXT_WIDTH = 200
FOLDS = 4  # f: the fold models trained to judge training labels out of sample (core.folds)
MARKS = {True: "✓", False: "✗", None: ""}


class DoctorTable(DataTable):
    """The suspicious rows, most suspicious first."""

    BINDINGS = [
        Binding("y", "decide(True)", "Accept"),
        Binding("n", "decide(False)", "Reject"),
        Binding("A", "accept_all", "Accept all"),
        Binding("w", "write", "Write cleaned file"),
        Binding("f", "folds", "Check out of sample"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.findings: list[Any] = []
        self.decisions: list[bool | None] = []

    def on_mount(self) -> None:
        self.add_columns("", "score", "kind", "split", "row", "label", "review")

    def show(self, findings: list[Any]) -> None:
        self.findings, self.decisions = list(findings), [None] * len(findings)
        self.clear()
        for i, f in enumerate(self.findings):
            label = f"{f.label} → {f.suggested_label}" if f.suggested_label else f.label
            self.add_row("", f"{f.score:.2f}", f.kind.replace("_", " "), f.split, str(f.row), cell(label, 30),
                         cell(f.text, TEXT_WIDTH), key=str(i))

    @property
    def current(self) -> Any:
        if not self.findings or not 0 <= self.cursor_row < len(self.findings):
            return None
        return self.findings[self.cursor_row]

    def _mark(self, row: int) -> None:
        self.update_cell_at((row, 0), MARKS[self.decisions[row]])

    def action_decide(self, accept: bool) -> None:
        row = self.cursor_row
        if self.current is None:
            return
        self.decisions[row] = accept
        self._mark(row)
        if row + 1 < len(self.findings):
            self.move_cursor(row=row + 1)
        self.post_message(DataPane.Decided())

    def action_accept_all(self) -> None:
        self.decisions = [True if d is None else d for d in self.decisions]
        for row in range(len(self.findings)):
            self._mark(row)
        self.post_message(DataPane.Decided())

    def action_write(self) -> None:
        self.post_message(DataPane.WriteClean())

    def action_folds(self) -> None:
        self.post_message(DataPane.CrossCheck())

    @property
    def accepted(self) -> list[Any]:
        return [f for f, d in zip(self.findings, self.decisions) if d]


class DataPane(Vertical):
    """The doctor's findings for one run, computed when the tab is first shown for it."""

    class Decided(Message):
        """A suggestion was accepted or rejected."""

    class WriteClean(Message):
        """Write the cleaned copy with the accepted suggestions."""

    class CrossCheck(Message):
        """Judge the training labels out of sample (FOLDS fold models), or stop doing so."""

    DEFAULT_CSS = """
    DataPane #data-count { color: $text-muted; }
    DataPane #data-body { height: 1fr; }
    DataPane #doctor { width: 2fr; }
    DataPane #cartography { width: 1fr; min-width: 30; }
    DataPane #data-text { height: auto; max-height: 35%; border-top: solid $primary 50%; overflow-y: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run: Path | None = None
        self.active = False
        self.diagnosed: Path | None = None  # the run whose findings are shown
        self.diagnosis: Any = None
        self._explainer = RunExplainer()  # the run's model, loaded on first use
        self._explaining = ""
        self._folds_stop: threading.Event | None = None  # set while fold models train: setting it stops them

    def compose(self) -> ComposeResult:
        yield Static("Select a run, then open this tab: the data doctor checks its data.", id="data-count")
        with Horizontal(id="data-body"):
            yield DoctorTable(id="doctor")
            yield PlotextPlot(id="cartography")
        yield Static(id="data-text")

    def on_resize(self) -> None:
        # The chart needs room to be read: on a narrow or short terminal the table has the width alone.
        self.query_one("#cartography").display = self.size.width >= 100 and self.size.height >= 16

    def select(self, run: Path | None) -> None:
        if self._folds_stop is not None and run != self.run:  # the fold models were for the run left
            self._folds_stop.set()
        self.run = run
        if self.active:
            self.refresh_findings()

    def set_active(self, active: bool) -> None:
        self.active = active
        if active:
            self.refresh_findings()

    def refresh_findings(self) -> None:
        if self.run is None or self.run == self.diagnosed:
            return
        self.diagnosed = self.run
        self.query_one("#data-count", Static).update(printable(f"checking the data of {self.run.name}…"))
        self.query_one(DoctorTable).show([])
        self._diagnose(self.run)

    @on(CrossCheck)
    def _cross_check(self, event: CrossCheck) -> None:
        event.stop()
        if self._folds_stop is not None:
            self._folds_stop.set()
            self.query_one("#data-count", Static).update("stopping the fold models…")
            return
        if self.run is None:
            return
        self._folds_stop = threading.Event()
        self.diagnosed = self.run
        self.query_one("#data-count", Static).update(printable(
            f"judging the training labels of {self.run.name} out of sample: {FOLDS} fold models, each about "
            f"{FOLDS - 1}/{FOLDS} of a training (f again stops)…"))
        self._diagnose(self.run, FOLDS, self._folds_stop)

    def _progress(self, line: str) -> None:
        """A fold's progress line, from the worker thread."""
        self.app.call_from_thread(self.query_one("#data-count", Static).update,
                                  printable(f"{line} (f stops)"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-doctor")
    def _diagnose(self, run: Path, folds: int | None = None, stop: threading.Event | None = None):
        import numpy as np

        from core.doctor import diagnose
        from core.training.dynamics import FILE

        try:
            diagnosis = diagnose(run, folds=folds, on_progress=self._progress if folds else None, stop=stop)
        finally:
            if folds:
                self.app.call_from_thread(setattr, self, "_folds_stop", None)
        points = None
        if (run / FILE).exists():
            with np.load(run / FILE) as saved:
                probability = saved["probability"]
            if probability.shape[1] == len(diagnosis.train_rows):
                with np.errstate(all="ignore"):
                    flagged = {f.row for f in diagnosis.findings if f.split == "train"}
                    points = (np.nanstd(probability, axis=0), np.nanmean(probability, axis=0),
                              np.asarray([r in flagged for r in diagnosis.train_rows]))
        return run, diagnosis, points

    @on(Worker.StateChanged)
    def _diagnosed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "report-doctor" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        count = self.query_one("#data-count", Static)
        if event.state == WorkerState.ERROR:
            from core.training.stopping import StoppedEarly

            if isinstance(event.worker.error, StoppedEarly):  # f pressed again: the findings shown before stand
                self.diagnosed = None
                self.refresh_findings()
                return
            count.update(Text(printable(f"The data doctor could not check this run: {event.worker.error}"),
                              style="italic"))
            return
        run, diagnosis, points = event.worker.result
        if run != self.run:
            return
        self.diagnosis = diagnosis
        findings = diagnosis.findings
        kinds = {k: sum(f.kind == k for f in findings) for k in ("label_error", "ambiguous", "near_duplicate", "leak")}
        line = (f"{len(findings)} suspicious rows: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in kinds.items())
                + ". y accept · n reject · A accept all · w write the cleaned copy and open it on F2 · f judge "
                  "training labels out of sample")
        if diagnosis.leaked_test_rows and diagnosis.test_accuracy_without_leaks is not None:
            line += (f"\ntest accuracy {diagnosis.test_accuracy:.1%}, {diagnosis.test_accuracy_without_leaks:.1%} "
                     f"without its {diagnosis.leaked_test_rows} leaked reviews")
        for note in diagnosis.notes:
            line += f"\n{note}"
        count.update(printable(line))
        table = self.query_one(DoctorTable)
        table.show(findings)
        if self.active and findings:
            table.focus()  # y, n, A and w act on it at once
        self._chart(points, findings)
        self._show_current()

    def _chart(self, points, findings) -> None:
        plot = self.query_one("#cartography", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.title("training dynamics")
        plt.xlabel("variability")
        plt.ylabel("confidence")
        if points is not None:
            variability, confidence, flagged = points
            seen = variability == variability  # not NaN
            plt.scatter(variability[seen & ~flagged].tolist(), confidence[seen & ~flagged].tolist(), marker="dot",
                        label="reviews")
            if (seen & flagged).any():
                plt.scatter(variability[seen & flagged].tolist(), confidence[seen & flagged].tolist(), marker="x",
                            color="red", label="flagged")
        plot.refresh()

    def _show_current(self) -> None:
        """The highlighted review in full with the doctor's reason, then (once computed) its explanation."""
        finding = self.query_one(DoctorTable).current
        target = self.query_one("#data-text", Static)
        self._explaining = finding.text if finding is not None else ""
        if finding is None:
            target.update("")
            return
        target.update(Text.assemble(printable(finding.text), "\n", (printable(finding.reason), "italic")))
        if self.active and self.run is not None:
            self._explain(self.run, finding)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-doctor-explain")
    def _explain(self, run: Path, finding: Any):
        return finding, self._explainer.explain(run, finding.text)

    @on(Worker.StateChanged)
    def _explained(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "report-doctor-explain" or event.state != WorkerState.SUCCESS:
            return
        event.stop()
        finding, explanation = event.worker.result
        if finding.text == self._explaining:  # the cursor may have moved on
            self.query_one("#data-text", Static).update(Text.assemble(
                (printable(finding.reason), "italic"), "\n", Text("Why the model says ", style="bold"),
                Text(printable(explanation.prediction.label), style="bold"), ":\n", explanation_text(explanation)))

    @on(DataTable.RowHighlighted, "#doctor")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_current()

    @on(Decided)
    def _decided(self, event: Decided) -> None:
        event.stop()

    @on(WriteClean)
    def _write(self, event: WriteClean) -> None:
        event.stop()
        table = self.query_one(DoctorTable)
        if self.run is None or not table.findings:
            return
        if not table.accepted:
            self.app.notify("Accept rows first (y, or A for all), then press w.", title="Data doctor")
            return
        self._write_clean(self.run, table.accepted)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-doctor-write")
    def _write_clean(self, run: Path, accepted: list[Any]):
        from core.doctor import clean_copy_path, write_clean
        from core.runs.store import Run

        out = clean_copy_path(run)
        sidecar = write_clean(run, accepted, out, relabel=True)
        return out, sidecar, Run(run).train_config().replace(dataset=str(out))  # the run's recipe, on clean data

    @on(Worker.StateChanged)
    def _written(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "report-doctor-write" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        if event.state == WorkerState.ERROR:
            notify_error(self.app, event.worker.error, title="Could not write the cleaned copy")
            return
        out, sidecar, config = event.worker.result
        relabelled = sum(c["change"] == "relabelled" for c in sidecar["changes"])
        self.app.config = config
        self.app.notify(printable(f"Wrote {out} ({sidecar['rows_written']} rows: "
                                  f"{len(sidecar['changes']) - relabelled} dropped, {relabelled} relabelled); "
                                  "F2 has the run's settings with it as the dataset."), title="Data doctor", markup=False)
        self.app.switch_mode("params")
