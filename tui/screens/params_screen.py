"""Placeholder for the params screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import BaseScreen


class ParamsScreen(BaseScreen):
    """The params screen."""

    def compose_body(self) -> ComposeResult:
        yield Static("params", id="placeholder")
