"""A prediction at a glance: the label, how sure the model is, how long it took, and one bar per class."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from core.format import printable

EIGHTHS = " ▏▎▍▌▋▊▉"


def block_bar(fraction: float, width: int) -> tuple[str, int]:
    """`fraction` of `width` cells drawn with eighth blocks; returns (bar, cells left empty)."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (EIGHTHS[part] if part else "")
    return bar, width - len(bar)


class ConfidenceView(Widget):
    """The latest prediction (or a hint/message when there is none)."""

    DEFAULT_CSS = """
    ConfidenceView { height: auto; min-height: 3; padding: 0 1; }
    ConfidenceView > .confidence--track { background: $boost; }
    ConfidenceView > .confidence--negative { color: $error; }
    ConfidenceView > .confidence--positive { color: $success; }
    ConfidenceView > .confidence--other { color: $primary; }
    ConfidenceView > .confidence--muted { color: $text-muted; }
    ConfidenceView > .confidence--error { color: $error; text-style: bold; }
    """
    COMPONENT_CLASSES = {"confidence--track", "confidence--negative", "confidence--positive", "confidence--other",
                         "confidence--muted", "confidence--error"}

    def __init__(self, hint: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._prediction: Any = None  # core.predict.Prediction
        self._latency = ""
        self._message, self._error = hint, False

    @property
    def prediction(self) -> Any:
        return self._prediction

    def show(self, prediction: Any, latency: str) -> None:
        """Show `prediction` (a core.predict.Prediction) and how long it took."""
        self._prediction, self._latency, self._message = prediction, latency, ""
        self.refresh(layout=True)

    def _class_style(self, label: str) -> Style:
        kind = "negative" if label.lower().startswith("neg") else "positive" if label.lower().startswith("pos") else "other"
        return self.get_component_rich_style(f"confidence--{kind}")

    def render(self) -> Text:
        muted = self.get_component_rich_style("confidence--muted")
        p = self._prediction
        if p is None:
            return Text(printable(self._message), style=self.get_component_rich_style("confidence--error") if self._error else muted)
        text = Text()
        text.append(printable(p.label.upper()), self._class_style(p.label) + Style(bold=True))
        text.append(f"  {p.confidence:.1%} confident", Style(bold=True))
        if self._latency:
            text.append(f"  ·  {self._latency}", muted)
        names = list(p.probabilities)
        shown = {n: printable(n) for n in names}  # label names come from the user's data
        name_width = max(len(n) for n in shown.values())
        bar_width = max(10, min(60, self.content_size.width - name_width - 9))
        track = self.get_component_rich_style("confidence--track")
        for name in names:
            prob = p.probabilities[name]
            bar, empty = block_bar(prob, bar_width)
            style = self._class_style(name) + Style(bgcolor=track.bgcolor)
            text.append("\n")
            text.append(shown[name].ljust(name_width) + " ", Style(bold=name == p.label) if name == p.label else muted)
            text.append(bar, style)
            text.append(" " * empty, track)
            text.append(f" {prob:6.1%}", Style(bold=True) if name == p.label else muted)
        return text
