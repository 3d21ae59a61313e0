"""The report's Compare tab: two marked runs' validation and loss curves side by side, and their config differences."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from core.format import printable
from core.runs.report import RunReport, config_diff
from tui.safe import plain
from tui.widgets.curves import PALETTE, CurvesPlot, Series, hex_colour
from tui.widgets.report_tables import diff_table

MARKS = "AB"


class ComparePane(VerticalScroll):
    """Run A against run B; a hint while fewer than two runs are marked."""

    DEFAULT_CSS = """
    ComparePane { height: 1fr; }
    ComparePane #compare-legend { color: $text-muted; }
    ComparePane #compare-plots { height: 1fr; min-height: 12; }
    ComparePane #compare-diff { margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="compare-legend")
        with Horizontal(id="compare-plots"):
            yield CurvesPlot("Validation acc (line), F1 (dots)", xlabel="epoch", id="compare-val")
            yield CurvesPlot("Training loss", xlabel="step", id="compare-loss")
        yield Static(id="compare-diff")

    def hint(self, marked: list[Path], problem: str | None = None) -> None:
        """Say how to compare (and, when given, why the marked runs could not be)."""
        names = ", ".join(f"{MARKS[i]} {p.name}" for i, p in enumerate(marked)) or "none"
        text = f"Press space on two runs in the table to compare them (marked: {names})."
        self.query_one("#compare-legend", Static).update(plain(f"{problem}\n{text}" if problem else text))
        self.query_one("#compare-val", CurvesPlot).show([])
        self.query_one("#compare-loss", CurvesPlot).show([])
        self.query_one("#compare-diff", Static).update("")

    def show(self, reports: tuple[RunReport, RunReport]) -> None:
        legend, val, loss = [], [], []
        for mark, report, colour in zip(MARKS, reports, PALETTE):
            legend.append(Content.assemble((f"━━ {mark} ", f"bold {hex_colour(colour)}"),
                                           printable(f"{report.name} ({report.info.status})   ")))
            val += [Series(f"{mark} accuracy", report.curve("accuracy"), colour),
                    Series(f"{mark} F1", report.curve("f1"), colour, "dot")]
            loss.append(Series(mark, report.train_loss, colour))  # the legend line above names A and B
        a, b = reports
        diff = diff_table(config_diff(a.config, b.config), a.name, b.name)
        self.query_one("#compare-legend", Static).update(Content("").join(legend))
        self.query_one("#compare-val", CurvesPlot).show(val)
        self.query_one("#compare-loss", CurvesPlot).show(loss)
        self.query_one("#compare-diff", Static).update(diff)
