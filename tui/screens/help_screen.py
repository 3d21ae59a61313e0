"""`?`: the keys of the screen in use, with what each does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui.safe import cell


def key_rows(screen) -> list[tuple[str, str]]:
    """(key, what it does) for every key the screen answers to, the screen's own first (see _group)."""
    rows, seen = [], set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        description = binding.description or binding.action.replace("_", " ")
        if key in seen or not description or key.startswith(("tab", "shift+tab")):
            continue
        seen.add(key)
        order = _group(screen, active)
        rows.append((order, binding.key_display or screen.app.get_key_display(binding), description))
    return [(key, what) for _, key, what in sorted(rows, key=lambda row: row[0])]  # stable within a group


def _group(screen, active) -> int:
    """0: the screen's own keys; 1: the app's and every screen's (screens, quit); 2: Textual's and the
    focused widget's (copying, scrolling)."""
    from textual.app import App
    from textual.screen import Screen

    binding = active.binding
    if binding in vars(type(screen)).get("BINDINGS", []):
        return 0
    ours = {b.action for b in type(screen.app).BINDINGS if isinstance(b, Binding)}
    textual_own = {b.action for b in [*Screen.BINDINGS, *App.BINDINGS] if isinstance(b, Binding)} - ours
    return 1 if active.node in (screen, screen.app) and binding.action not in textual_own else 2


class HelpModal(ModalScreen[None]):
    """The keys of the screen that was shown when `?` was pressed."""

    BINDINGS = [Binding("escape,question_mark,enter,q", "dismiss", "Close")]

    def __init__(self, title: str, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.rows = title, rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        for key, what in self.rows:
            table.add_row(cell(key, style="bold"), cell(what))
        with Vertical(classes="dialog"):
            yield Label(f"Keys on {self.title_text}", classes="dialog-title")
            yield Static(table, classes="dialog-text")
            yield Static("Tab / Shift+Tab move between fields · Esc closes this", classes="dialog-text")
