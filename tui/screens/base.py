"""The frame every screen shares: header (app, device, run state), body, footer with the screen keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header

from tui.widgets.nav import ScreenKeys


class BaseScreen(Screen):
    """A screen with the app header and footer; subclasses yield their body from `compose_body`."""

    # A text field takes q as text; anywhere else it quits (F10 always, as htop users expect). `?` opens the
    # help anywhere, and in a text field too when pressed first (F1 and F5 open with the cursor in one): with
    # priority, it is seen before the field, which lets it through only then (SafeInput.check_consume_key).
    BINDINGS = [
        Binding("question_mark", "help", "Keys", key_display="?", priority=True),
        Binding("q", "app.quit", "Quit", show=False),
        Binding("f10", "app.quit", "Quit", show=False, priority=True),
    ]

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

    def action_help(self) -> None:
        """List this screen's keys."""
        from tui.screens.help_screen import HelpModal, key_rows

        mode = self._mode_name()
        title = self.app.SCREEN_KEYS[mode][1] if mode in self.app.SCREEN_KEYS else type(self).__name__
        self.app.push_screen(HelpModal(title, key_rows(self)))
