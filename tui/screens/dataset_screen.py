"""Placeholder for the dataset screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import BaseScreen


class DatasetScreen(BaseScreen):
    """The dataset screen."""

    def compose_body(self) -> ComposeResult:
        yield Static("dataset", id="placeholder")
