"""Placeholder for the predict screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import BaseScreen


class PredictScreen(BaseScreen):
    """The predict screen."""

    def compose_body(self) -> ComposeResult:
        yield Static("predict", id="placeholder")
