"""The bar of screen keys (F1..F5) above the footer, with the current screen highlighted."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Click
from textual.widgets import Static


class ScreenKey(Static):
    """One screen's key and name; clicking it switches to that screen."""

    def __init__(self, mode: str, key: str, label: str, current: bool) -> None:
        super().__init__(f"[b]{key.upper()}[/b] {label}", classes="screen-key -current" if current else "screen-key")
        self.mode = mode

    def on_click(self, event: Click) -> None:
        event.stop()
        self.app.switch_mode(self.mode)


class ScreenKeys(Horizontal):
    """F1 Data · F2 Params · F3 Train · F4 Report · F5 Predict — always fully visible, even at 80 columns."""

    DEFAULT_CSS = """
    ScreenKeys { height: 1; background: $panel; }
    ScreenKeys .screen-key { width: auto; padding: 0 1; color: $text-muted; }
    ScreenKeys .screen-key.-current { background: $primary; color: $text; }
    ScreenKeys .screen-key:hover { background: $boost; }
    """

    def __init__(self, screens: dict[str, tuple[str, str, str]], current: str | None) -> None:
        super().__init__()
        self.screens, self.current = screens, current

    def compose(self) -> ComposeResult:
        for mode, (key, label, _) in self.screens.items():
            yield ScreenKey(mode, key, label, mode == self.current)
