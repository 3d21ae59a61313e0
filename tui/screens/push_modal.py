"""F4's "push to the Hub" dialog: the repository name and visibility, then the upload, in a worker it owns."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static
from textual.worker import Worker, WorkerState

from core.errors import CoreError
from core.format import printable
from tui.safe import SafeInput, for_app, plain


class PushModal(ModalScreen[str | None]):
    """Upload a run's model and card to USER/NAME; dismisses with the repository's URL, or None if cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run: Path) -> None:
        super().__init__()
        self.run = run
        self.uploading = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Push to the Hugging Face Hub", classes="dialog-title")
            yield Static(plain(f"{self.run.name}: its model folder and model card go up, with the token "
                               "`hf auth login` saved (or HF_TOKEN)."), classes="dialog-text")
            yield SafeInput(placeholder="USER/NAME", id="push-repo")
            yield Checkbox("private repository", id="push-private")
            yield Static("", id="push-status", classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Push (enter)", variant="primary", id="push")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#push-repo", Input).focus()

    @on(Input.Submitted, "#push-repo")
    @on(Button.Pressed, "#push")
    def _push(self, event) -> None:
        event.stop()
        if self.uploading:
            return
        repo = self.query_one("#push-repo", Input).value.strip()
        self.uploading = True
        self.query_one("#push-status", Static).update(plain(f"uploading to {repo}…"))
        self._upload(repo, self.query_one("#push-private", Checkbox).value)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_cancel(self) -> None:
        if self.uploading:  # a thread cannot be stopped halfway through an upload
            self.notify("The upload is under way; it cannot be cancelled halfway.", severity="warning")
            return
        self.dismiss(None)

    @work(thread=True, exit_on_error=False, group="push")
    def _upload(self, repo: str, private: bool):
        from core.push import push_run

        return push_run(self.run, repo, private=private)

    @on(Worker.StateChanged)
    def _uploaded(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "push" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.uploading = False
        if event.state == WorkerState.ERROR:  # say why and keep the dialog, so the name can be fixed
            error = event.worker.error
            said = for_app(str(error)) if isinstance(error, CoreError) else f"{type(error).__name__}: {error}"
            self.query_one("#push-status", Static).update(plain(f"not uploaded: {said}"))
            return
        result = event.worker.result
        self.app.notify(printable(f"Uploaded {result.files} files to {result.url}"), title="Pushed", markup=False)
        self.dismiss(result.url)
