"""The frame every screen shares: header (app, device, run state), body, footer with the screen keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header


class BaseScreen(Screen):
    """A screen with the app header and footer; subclasses yield their body from `compose_body`."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()
