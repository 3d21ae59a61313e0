"""Report: every run in a table; the selected run's metrics, curves and mistakes; two marked runs compared."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from core.format import format_time, printable, short_name
from core.runs.layout import LIVE, RunStatus
from core.runs.report import RunReport, load_report
from core.runs.store import RunInfo, list_runs, run_info
from tui.safe import cell, notify_error, plain
from tui.screens.base import BaseScreen
from tui.widgets.curves import PALETTE, CurvesPlot, Series
from tui.widgets.report_compare import MARKS, ComparePane
from tui.widgets.report_data import DataPane
from tui.widgets.report_errors import ErrorsPane
from tui.widgets.report_head import RESUMABLE, stop_line, summary_head
from tui.widgets.report_sweep import SweepPane
from tui.widgets.report_tables import summary_tables, validation_table

GROUPS = ("report-runs", "report-run", "report-compare")


TABS = {"tab-summary": "Summary", "tab-curves": "Curves", "tab-errors": "Errors", "tab-compare": "Compare",
        "tab-sweep": "Sweep", "tab-data": "Data"}


class ReportScreen(BaseScreen):
    """Runs newest first; the cursor row is the run shown in the tabs below."""

    BINDINGS = [
        Binding("space", "mark", "Mark for compare"),
        Binding("r", "reload", "Reload"),
        Binding("a", "attach", "Attach"),
        Binding("R", "resume", "Resume"),
        Binding("p", "push", "Push to Hub"),
        *[Binding(str(i), f"tab('{tab}')", name, show=False) for i, (tab, name) in enumerate(TABS.items(), start=1)],
    ]

    # A short terminal (80x24 over SSH) gives the tabs the room: the runs table scrolls within a quarter of it.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    DEFAULT_CSS = """
    ReportScreen #runs { height: auto; max-height: 40%; min-height: 3; }
    ReportScreen.-short #runs { max-height: 25%; }
    ReportScreen #report-tabs { height: 1fr; }
    ReportScreen TabPane { padding: 0 1; }
    ReportScreen #summary { height: 1fr; }
    ReportScreen #summary-head { margin-bottom: 1; }
    ReportScreen #summary-validation { margin-top: 1; }
    ReportScreen #errors-pane { height: 1fr; }
    ReportScreen #data-pane { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs: list[RunInfo] = []
        self.selected: Path | None = None
        self._followed: Path | None = None  # the newest run this screen selected by itself
        self.report: RunReport | None = None
        self.marked: list[Path] = []
        self._opened = False
        self._workers: dict[str, Worker] = {}

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        with TabbedContent(id="report-tabs"):
            with TabPane("Summary (1)", id="tab-summary"):
                with VerticalScroll(id="summary"):
                    yield Static("Select a run in the table above.", id="summary-head")
                    yield Static(id="summary-tables")
                    yield Static(id="summary-validation")
            with TabPane("Curves (2)", id="tab-curves"):
                yield CurvesPlot("Loss: training (per logged step) and validation (per eval)", xlabel="step",
                                 id="loss-plot")
            with TabPane("Errors (3)", id="tab-errors"):
                yield ErrorsPane(id="errors-pane")
            with TabPane("Compare (4)", id="tab-compare"):
                yield ComparePane(id="compare")
            with TabPane("Sweep (5)", id="tab-sweep"):
                yield SweepPane(id="sweep")
            with TabPane("Data (6)", id="tab-data"):
                yield DataPane(id="data-pane")

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_column("vs", key="mark")
        # Metrics before names, so the numbers stay in view on a narrow terminal.
        for label in ("status", "date", "val acc/F1", "test acc/F1", "model", "dataset"):
            table.add_column(label, key=label)
        table.focus()
        self.query_one(ComparePane).hint(self.marked)
        self.watch(self.app, "runs_version", lambda _: self.load_runs(), init=False)
        self.load_runs()

    # ------------------------------------------------------------ workers

    def load_runs(self) -> None:
        self.query_one("#runs").loading = not self.runs
        self._workers["report-runs"] = self._list_runs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-runs")
    def _list_runs(self) -> list[RunInfo]:
        runs = list_runs(self.app.runs_root)
        extra = self.app.open_run  # `sentitune --run` may name a folder outside the runs folder
        if extra is not None and extra.is_dir() and extra.resolve() not in {r.path.resolve() for r in runs}:
            runs.append(run_info(extra))
        return runs

    def load_selected(self) -> None:
        if self.selected is None:
            return
        self.query_one("#summary").loading = True
        self._workers["report-run"] = self._load_report(self.selected)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-run")
    def _load_report(self, path: Path) -> tuple[RunReport, str | None, tuple | None]:
        from core.experiments.record import sweep_of

        report = load_report(path)
        stopped = stop_line(path) if report.info.status == RunStatus.STOPPED else None
        return report, stopped, sweep_of(path, self.app.runs_root)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-compare")
    def _load_compare(self, a: Path, b: Path) -> tuple[RunReport, RunReport]:
        return load_report(a), load_report(b)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group not in GROUPS or self._workers.get(worker.group) is not worker:
            return  # someone else's worker, or one a newer request replaced
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self._loaded(worker.group)
        if event.state == WorkerState.ERROR:
            notify_error(self, worker.error, title="Could not read the run")
            self._cannot_show(worker.group, worker.error)
            return
        try:
            {"report-runs": self._show_runs, "report-run": self._show_report,
             "report-compare": self.query_one(ComparePane).show}[worker.group](worker.result)
        except Exception as exc:  # noqa: BLE001 - run files can hold anything; one must never close the app
            self._cannot_show(worker.group, exc)

    def _cannot_show(self, group: str, error: BaseException | None) -> None:
        """Say in place of the figures that a run's files could not be shown, and why."""
        why = f"{type(error).__name__}: {error}"
        if group == "report-compare":
            self.query_one(ComparePane).hint(self.marked, f"Cannot compare these runs ({why}).")
        elif group == "report-run":
            self.report = None
            name = self.selected.name if self.selected else "this run"
            self.query_one("#summary-head", Static).update(Content.styled(printable(
                f"{name}: cannot show all of this run ({why}); its files may be damaged."), "$error"))
            for selector in ("#summary-tables", "#summary-validation"):
                self.query_one(selector, Static).update("")
            self.query_one(ErrorsPane).clear()

    def _loaded(self, group: str) -> None:
        if group == "report-runs":
            self.query_one("#runs").loading = False
        elif group == "report-run":
            self.query_one("#summary").loading = False

    # ------------------------------------------------------------ runs table

    def _show_runs(self, runs: list[RunInfo]) -> None:
        self.runs = runs
        paths = [info.path for info in runs]
        self.marked = [p for p in self.marked if p in paths]
        if not self._opened and self.app.open_run is not None:
            wanted = self.app.open_run.resolve()
            self.selected = next((p for p in paths if p.resolve() == wanted), self.selected)
        self._opened = True
        newest = self.app.newest_run
        if newest is not None and newest != self._followed and newest in paths:
            self.selected, self._followed = newest, newest  # a run just ended: show it (once; then the user's pick)
        if self.selected not in paths:
            self.selected = paths[0] if paths else None
        table = self.query_one("#runs", DataTable)
        table.clear()
        for info in runs:
            table.add_row(*self._row(info), key=str(info.path))
        if self.selected is not None:
            table.move_cursor(row=paths.index(self.selected), animate=False)
            self.load_selected()
        else:
            self.query_one("#summary-head", Static).update(
                plain(f"No runs yet in the runs folder ({self.app.runs_root}/): start one from Params (F2)."))
        self._update_marks()

    def _row(self, info: RunInfo) -> tuple:
        return (self._mark(info.path), cell(info.status, 12), format_time(info.created),
                _pair(info.val_accuracy, info.val_f1), _pair(info.test_accuracy, info.test_f1),
                cell(short_name(info.model), 28), cell(short_name(info.dataset), 28))

    def _mark(self, path: Path) -> str:
        return MARKS[self.marked.index(path)] if path in self.marked else ""

    def _cursor_path(self) -> Path | None:
        table = self.query_one("#runs", DataTable)
        if not self.runs or not 0 <= table.cursor_row < len(self.runs):
            return None
        return self.runs[table.cursor_row].path

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs":
            path = self._cursor_path()  # the cursor now, not when the message was sent: reloads move it
            if path is not None and path != self.selected:
                self.selected = path
                self.load_selected()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "runs":
            self.query_one(TabbedContent).active = "tab-summary"

    def on_sweep_pane_open(self, event: SweepPane.Open) -> None:
        """Enter on a sweep's run: select it in the runs table and show its summary."""
        paths = [info.path for info in self.runs]
        wanted = next((p for p in paths if p.resolve() == event.run.resolve()), None)
        if wanted is None:
            self.notify(printable(f"{event.run.name} is not in the runs list; press r to reload."), markup=False)
            return
        self.query_one("#runs", DataTable).move_cursor(row=paths.index(wanted), animate=False)
        self.selected = wanted
        self.load_selected()
        self.query_one(TabbedContent).active = "tab-summary"

    def action_tab(self, tab: str) -> None:
        """Show one of the report's tabs (keys 1-4)."""
        self.query_one("#report-tabs", TabbedContent).active = tab

    def action_reload(self) -> None:
        self.load_runs()

    def _selected_info(self) -> RunInfo | None:
        return next((r for r in self.runs if r.path == self.selected), None)

    def action_attach(self) -> None:
        """Follow the selected run, which another process is training, on the dashboard."""
        info = self._selected_info()
        if info is not None and self.app.training and self.app.progress.run_dir == str(info.path):
            self.app.switch_mode("train")  # already shown live
            return
        if info is None or info.status not in LIVE:
            self.notify(printable("Only a run that is training can be attached; this one is "
                                  f"{info.status if info else 'not selected'}."), severity="warning", markup=False)
            return
        self.app.attach_run(info.path)

    def action_resume(self) -> None:
        """Continue the selected stopped, failed or interrupted run from its last checkpoint; on the Sweep tab,
        the shown sweep's runs left to do."""
        pane = self.query_one(SweepPane)
        if self.query_one(TabbedContent).active == "tab-sweep" and pane.path is not None:
            self.app.resume_sweep(pane.path)
            return
        info = self._selected_info()
        if info is None or info.status not in RESUMABLE:
            self.notify(printable("Resume works on stopped, failed or interrupted runs; this one is "
                                  f"{info.status if info else 'not selected'}."), severity="warning", markup=False)
            return
        self.app.resume_run(info.path)

    def action_push(self) -> None:
        """Upload the selected run's model and card to the Hugging Face Hub (asks for the repository)."""
        from tui.screens.push_modal import PushModal

        info = self._selected_info()
        if info is None or not info.has_model:
            self.notify(printable("Only a run with a saved model can be pushed; this one is "
                                  f"{info.status if info else 'not selected'}."), severity="warning", markup=False)
            return
        self.app.push_screen(PushModal(info.path))

    def action_mark(self) -> None:
        path = self._cursor_path()
        if path is None:
            return
        if path in self.marked:
            self.marked.remove(path)
        else:
            self.marked = (self.marked + [path])[-2:]
        self._update_marks()
        if len(self.marked) == 2:
            self.query_one(TabbedContent).active = "tab-compare"

    def _update_marks(self) -> None:
        table = self.query_one("#runs", DataTable)
        for info in self.runs:
            table.update_cell(str(info.path), "mark", self._mark(info.path))
        if len(self.marked) == 2:
            self._workers["report-compare"] = self._load_compare(*self.marked)
        else:
            self.query_one(ComparePane).hint(self.marked)

    # ------------------------------------------------------------ the selected run

    def _show_report(self, result: tuple[RunReport, str | None, tuple | None]) -> None:
        report, stopped, sweep = result
        self.query_one(SweepPane).show(sweep, report.path)
        self.report = report
        info = report.info
        live_here = self.app.progress.run_dir == str(info.path) and self.app.training
        self.query_one("#summary-head", Static).update(summary_head(report, stopped, live_here))
        unreadable = info.status == RunStatus.UNREADABLE
        self.query_one("#summary-tables", Static).update("" if unreadable else summary_tables(report))
        self.query_one("#summary-validation", Static).update("" if unreadable else validation_table(report))
        self.query_one("#loss-plot", CurvesPlot).show([
            Series("training loss", report.train_loss, PALETTE[0]),
            Series("validation loss", report.validation_loss, PALETTE[1]),
        ])
        self.query_one(ErrorsPane).show(report)
        self.query_one(DataPane).select(report.path)

    @on(TabbedContent.TabActivated, "#report-tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self.query_one(ErrorsPane).set_active(event.pane.id == "tab-errors")
        self.query_one(DataPane).set_active(event.pane.id == "tab-data")


def _pair(accuracy: float | None, f1: float | None) -> str:
    """Accuracy and F1 as percentages, '85.0/84.7', for one runs-table column."""
    if accuracy is None and f1 is None:
        return "—"
    return "/".join("—" if v is None else f"{v * 100:.1f}" for v in (accuracy, f1))
