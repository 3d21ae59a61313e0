"""The frame every screen shares: header (app, device, run state), body, footer with the screen keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header

from tui.widgets.nav import ScreenKeys


class BaseScreen(Screen):
    """A screen with the app header and footer; subclasses yield their body from `compose_body`."""

    DEFAULT_CSS = """
    BaseScreen #bottom-bar { dock: bottom; height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_body()
        with Vertical(id="bottom-bar"):
            yield ScreenKeys(self.app.SCREEN_KEYS, self._mode_name())
            yield Footer(compact=True)

    def _mode_name(self) -> str | None:
        """The app mode this screen serves (its class is registered in the app's MODES)."""
        for mode, cls in self.app.MODES.items():
            if type(self) is cls:
                return mode
        return None

    def compose_body(self) -> ComposeResult:
        yield from ()
