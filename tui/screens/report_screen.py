"""Placeholder for the report screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import BaseScreen


class ReportScreen(BaseScreen):
    """The report screen."""

    def compose_body(self) -> ComposeResult:
        yield Static("report", id="placeholder")
