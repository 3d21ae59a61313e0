"""A plotext chart of a few named series, redrawn at its current size and theme."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import RenderResult
from textual_plotext import PlotextPlot

# Medium colours that read on dark and light backgrounds; a legend in markup can use the same hex values.
PALETTE = ((66, 135, 245), (245, 130, 48), (46, 170, 90), (200, 80, 200))


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def legend_room(low: float, high: float) -> tuple[float, float]:
    """Y limits with head-room at the top, where plotext draws its legend over the data."""
    span = (high - low) or abs(high) or 1.0
    return low - 0.05 * span, high + 0.45 * span


# Below this height a chart drops its legend box and x label: a legend of two series takes two of the
# few plotting rows, and the head-room left for it rounds away (seen at 100x30, where charts are 10 rows).
SMALL_ROWS = 13


@dataclass(frozen=True)
class Series:
    """One line of a chart."""

    label: str
    points: list[tuple[float, float]]
    colour: tuple[int, int, int] = PALETTE[0]
    marker: str = "braille"


class CurvesPlot(PlotextPlot):
    """Line chart of `Series`; shows `empty` instead of axes while no series has a point."""

    DEFAULT_CSS = """
    CurvesPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, title: str = "", xlabel: str = "", empty: str = "no data yet", **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart_title, self.xlabel, self.empty = title, xlabel, empty
        self.series: list[Series] = []

    def show(self, series: list[Series], title: str | None = None) -> None:
        """Replace the plotted series (and optionally the title) and redraw."""
        self.series = [s for s in series if s.points]
        if title is not None:
            self.chart_title = title
        self.refresh()

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_figure()
        # Too short for a legend box (it would cover the lines): the series are named in the title instead.
        small = self.size.height < SMALL_ROWS
        title = self.chart_title if self.series else f"{self.chart_title} — {self.empty}"
        if small and self.series:
            title += ": " + ", ".join(s.label for s in self.series)
        plt.title(title)
        if self.xlabel and not small:
            plt.xlabel(self.xlabel)
        values = [y for s in self.series for _, y in s.points]
        if values:
            low, high = min(values), max(values)
            if high == low:  # one point, or a flat line: plotext divides by the range
                pad = abs(high) * 0.05 or 0.05
                low, high = low - pad, high + pad
            plt.ylim(*(legend_room(low, high) if not small else (low, high)))
        for s in self.series:
            xs, ys = zip(*s.points)
            label = None if small else s.label
            if len(xs) == 1:  # a single point draws no line: show it as a dot
                plt.scatter(list(xs), list(ys), label=label, color=s.colour, marker="●")
            else:
                plt.plot(list(xs), list(ys), label=label, color=s.colour, marker=s.marker)
        return super().render()
