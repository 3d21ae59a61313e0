"""A bar chart of review lengths (tokens or characters) with the max_length cut marked."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


class LengthHistogram(PlotextPlot):
    """Draws a core.data.stats.LengthStats histogram; `limit` (max_length) is marked when it falls inside."""

    TICKS = 5

    def show_lengths(self, lengths: Any, unit: str, limit: int | None = None) -> None:
        """Redraw for `lengths` (LengthStats) measured in `unit` ("tokens" or "characters")."""
        plt = self.plt
        plt.clear_figure()
        edges, counts = lengths.bin_edges, lengths.counts
        # Bars at evenly spaced positions (bin i spans edges[i]..edges[i+1]) so ticks can name whole lengths.
        plt.bar(list(range(len(counts))), counts, width=0.9)
        step = max(1, len(counts) // (self.TICKS - 1))
        ticks = list(range(0, len(counts) + 1, step))
        plt.xticks([t - 0.5 for t in ticks], [f"{edges[t]:.0f}" for t in ticks])
        # Whole numbers of reviews on the y axis, from 0 (plotext would pick 403.0, 335.8, ... and draw the
        # empty bins as a bar along a baseline below 0).
        top = max(max(counts, default=0), 1)
        plt.ylim(0, top * 1.05)
        plt.yticks(integer_ticks(top))
        title = f"{unit} per review"
        if limit is not None and edges[0] <= limit < edges[-1]:
            width = (edges[-1] - edges[0]) / len(counts)
            plt.vline((limit - edges[0]) / width - 0.5, "red")
            title += f" (red line: max_length {limit})"
        plt.title(title)
        self.refresh()


def integer_ticks(top: int, count: int = 4) -> list[int]:
    """About `count` whole-number ticks from 0 to `top`, at a round step (1, 2, 5, 10, 20, 50...)."""
    raw = max(top / count, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, top + 1, int(step)))
