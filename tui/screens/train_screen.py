"""Placeholder for the train screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import BaseScreen


class TrainScreen(BaseScreen):
    """The train screen."""

    def compose_body(self) -> ComposeResult:
        yield Static("train", id="placeholder")
