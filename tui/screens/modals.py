"""Small modal dialogs: a yes/no confirmation and an error report."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.safe import plain


class ConfirmModal(ModalScreen[bool | str]):
    """Ask a yes/no question; dismisses with True for yes. `other` (label, key) adds a third answer between them,
    dismissed with its key."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Yes", show=False),
                Binding("n", "dismiss(False)", "No", show=False)]

    def __init__(self, question: str, yes: str = "Yes", no: str = "Cancel", enter_is_yes: bool = False,
                 other: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.question, self.yes, self.no, self.other = question, yes, no, other
        self.enter_is_yes = enter_is_yes  # Enter presses the focused button: Yes here, else No

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.question), classes="dialog-text")  # may quote an error or a file name
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="warning", id="yes")
                if self.other is not None:
                    yield Button(f"{self.other[0]} ({self.other[1]})", variant="primary", id="other")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes" if self.enter_is_yes else "#no", Button).focus()

    def on_key(self, event) -> None:
        if self.other is not None and event.key == self.other[1]:
            event.stop()
            self.dismiss(self.other[1])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "other" and self.other is not None:
            self.dismiss(self.other[1])
            return
        self.dismiss(event.button.id == "yes")


class ErrorModal(ModalScreen[None]):
    """Show a failure: what happened and what to change."""

    BINDINGS = [Binding("escape,enter", "dismiss", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Static(plain(self.message), classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss()
