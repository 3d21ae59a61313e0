"""Small parts of the prediction console: the sample list, the inline path prompt, the batch status line."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from tui.safe import SafeInput, plain


class ReviewInput(SafeInput):
    """The review box: Enter hands over the text typed so far and empties the box at once, and a pasted
    review of several lines is kept whole, as one review on one line."""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            # Submitted here, in the box's own key order: as a binding, Enter would run only once the key had
            # gone up to the app, after the keys typed behind it in the same burst had landed in this review.
            event.stop()
            event.prevent_default()
            await self.action_submit()
        # other keys: Input's own handler runs next

    async def action_submit(self) -> None:
        value = self.value
        self.value = ""  # emptied at once: what is typed next is the next review
        self.post_message(self.Submitted(self, value))

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # Input's own handler keeps only the first line
        event.stop()
        lines = [line.strip() for line in event.text.splitlines() if line.strip()]
        if not lines:
            return
        start, end = sorted(self.selection)
        self.replace(" ".join(lines), start, end)
        if len(lines) > 1:
            self.notify(f"The {len(lines)} pasted lines are kept as one review; to predict one review per line, "
                        "save them in a .txt file and press ctrl+o.", title="Paste")


class SamplePicker(Vertical):
    """Built-in reviews, one line each; clicking (or Enter on) one asks to predict it."""

    DEFAULT_CSS = """
    SamplePicker { height: 1fr; }
    SamplePicker OptionList { height: auto; max-height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    class Picked(Message):
        """The sample at `index` was chosen with the mouse or Enter."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, samples: list[str], title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.samples, self.title = samples, title

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="section-title")
        yield OptionList(*[Option(s, id=str(i)) for i, s in enumerate(self.samples)])

    def highlight(self, index: int) -> None:
        self.query_one(OptionList).highlighted = index

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Picked(event.option_index))


class PathPrompt(Horizontal):
    """An inline "label: [path]" question; Enter answers it, Esc closes it (answer None)."""

    DEFAULT_CSS = """
    PathPrompt { height: 3; display: none; }
    PathPrompt.-shown { display: block; }
    PathPrompt Label { width: auto; max-width: 50%; padding: 1 1 0 1; color: $accent; }
    PathPrompt Input { width: 1fr; }
    """
    BINDINGS = [Binding("escape", "close", "Cancel", show=False)]

    class Answered(Message):
        """The prompt for `mode` was answered with `path` (None: cancelled)."""

        def __init__(self, mode: str, path: str | None) -> None:
            super().__init__()
            self.mode, self.path = mode, path

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode: str | None = None

    def compose(self) -> ComposeResult:
        yield Label()
        yield SafeInput()

    def ask(self, mode: str, label: str, value: str, placeholder: str) -> None:
        """Show the prompt with `value` filled in and focus it."""
        self.mode = mode
        self.query_one(Label).update(label)
        prompt = self.query_one(SafeInput)
        prompt.value, prompt.placeholder = value, f"{placeholder}; Enter (Esc cancels)"
        self.add_class("-shown")
        prompt.focus()

    def action_close(self) -> None:
        if self.mode is not None:
            mode, self.mode = self.mode, None
            self.remove_class("-shown")
            self.post_message(self.Answered(mode, None))

    def on_input_submitted(self, event: SafeInput.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.notify("Type a file path, or press Esc to cancel.", severity="warning")
        elif self.mode is not None:
            mode, self.mode = self.mode, None
            self.remove_class("-shown")
            self.post_message(self.Answered(mode, event.value.strip()))


class BatchStatus(Vertical):
    """What the last file prediction did: a progress bar while it runs, then a one-line summary."""

    DEFAULT_CSS = """
    BatchStatus { height: auto; display: none; }
    BatchStatus.-shown { display: block; }
    BatchStatus Static { padding: 0 1; color: $accent; }
    BatchStatus ProgressBar { padding: 0 1; display: none; }
    BatchStatus ProgressBar.-shown { display: block; }
    BatchStatus #batch-confusion { display: none; color: $text; }
    BatchStatus #batch-confusion.-shown { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Static()
        yield ProgressBar(show_eta=False)
        yield Static(id="batch-confusion")

    @property
    def summary(self) -> str:
        return str(self.query_one(Static).render())

    def started(self, name: str) -> None:
        self.add_class("-shown")
        self.query_one(Static).update(plain(f"reading and predicting {name}…"))
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)
        bar.add_class("-shown")

    def progress(self, done: int, total: int) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)

    def finished(self, summary: str, scores: dict | None = None) -> None:
        """The one-line summary; with `scores` (the file had labels) its confusion matrix under it."""
        self.query_one(ProgressBar).remove_class("-shown")
        self.query_one(Static).update(plain(summary))
        matrix = self.query_one("#batch-confusion", Static)
        matrix.set_class(scores is not None, "-shown")
        if scores is not None:
            from tui.widgets.report_tables import confusion_table

            matrix.update(confusion_table(scores["confusion_matrix"], scores["label_names"], title=None))
