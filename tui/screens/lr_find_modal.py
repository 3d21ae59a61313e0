"""F2's learning-rate finder: the range test in a worker, its loss-vs-learning-rate curve, and its suggestion."""

from __future__ import annotations

import math
import threading
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from core.config import TrainConfig
from core.errors import CoreError
from core.format import short_name
from tui.safe import for_app, plain


class LrFindModal(ModalScreen[float | None]):
    """Runs the test for a config; dismisses with the suggested learning rate ("use it") or None."""

    BINDINGS = [Binding("escape", "close", "Close")]
    AUTO_FOCUS = ""  # nothing focused while the test runs: Enter must not close it on the Close button
    DEFAULT_CSS = """
    LrFindModal .dialog { width: 90%; max-width: 100; height: 90%; max-height: 30; }
    LrFindModal PlotextPlot { height: 1fr; min-height: 8; }
    """

    DRAW_EVERY = 0.5

    class Step(Message):
        def __init__(self, step: int, steps: int, lr: float, loss: float) -> None:
            super().__init__()
            self.step, self.steps, self.lr, self.loss = step, steps, lr, loss

    def __init__(self, config: TrainConfig, runs_root: Path) -> None:
        super().__init__()
        self.config, self.runs_root = config, runs_root
        self.stop = threading.Event()
        self.suggestion: float | None = None
        self.running = True
        self.points: list[tuple[float, float]] = []  # (learning rate, smoothed loss) as the steps come
        self.drawn = 0
        """How many points the curve shows: it is drawn as they come (a test takes minutes), at most every
        DRAW_EVERY seconds, and once more with the suggestion at the end."""
        self._draw_due = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Find a learning rate", classes="dialog-title")
            from core.experiments import lr_find

            yield Static(plain(f"{short_name(self.config.model)} on {short_name(self.config.dataset)}, batch "
                               f"{self.config.batch_size}: the learning rate "
                               f"rises from {lr_find.START_LR:.0e} to {lr_find.END_LR:g} over {lr_find.STEPS} steps "
                               "on a fresh copy of the model; nothing is saved."), classes="dialog-text")
            yield Static("loading the data and the model…", id="lr-status", classes="dialog-text")
            yield PlotextPlot(id="lr-plot")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Use it (enter)", variant="primary", id="lr-use", disabled=True)
                yield Button("Close (esc)", id="lr-close")

    def on_mount(self) -> None:
        self._find()

    @work(thread=True, exit_on_error=False, group="lr-find")
    def _find(self):
        from core.experiments import lr_find

        return lr_find.find_learning_rate(self.config, self.runs_root, steps=lr_find.STEPS,
                                          start_lr=lr_find.START_LR, stop_event=self.stop,
                                          on_step=lambda *a: self.post_message(self.Step(*a)))

    def on_lr_find_modal_step(self, message: Step) -> None:
        self.query_one("#lr-status", Static).update(
            f"step {message.step}/{message.steps} · learning rate {message.lr:.1e} · loss {message.loss:.4f}")
        self.points.append((message.lr, message.loss))
        if not self._draw_due:
            self._draw_due = True
            self.set_timer(self.DRAW_EVERY, self._draw_so_far)

    def _draw_so_far(self) -> None:
        self._draw_due = False
        if self.running:
            self._plot([lr for lr, _ in self.points], [loss for _, loss in self.points], None)

    @on(Worker.StateChanged)
    def _found(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "lr-find" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.running = False
        status = self.query_one("#lr-status", Static)
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            said = for_app(str(error)) if isinstance(error, CoreError) else f"{type(error).__name__}: {error}"
            status.update(plain(f"no result: {said}" if str(error) else "stopped"))
            return
        finding = event.worker.result
        self._plot(finding.learning_rates, finding.losses, finding.suggested_learning_rate)
        self.suggestion = finding.suggested_learning_rate
        if self.suggestion is None:
            status.update("no suggestion: the loss fell less than 5% over the range (a larger batch_size may help); "
                          "or let three short runs decide: type 1e-5, 3e-5, 1e-4 into learning_rate on F2")
            return
        status.update(plain(f"suggested learning rate {self.suggestion:.1e}: {finding.method}"))
        use = self.query_one("#lr-use", Button)
        use.label, use.disabled = f"Use {self.suggestion:.1e} (enter)", False
        use.focus()

    def _plot(self, learning_rates: list[float], losses: list[float], suggested: float | None) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.title("smoothed training loss against log10(learning rate)")
        points = [(math.log10(lr), loss) for lr, loss in zip(learning_rates, losses)
                  if math.isfinite(loss)]  # a loss that blew up to NaN ends the curve; it has no place on it
        self.drawn = len(points)
        if not points:
            return
        losses = [loss for _, loss in points]
        plt.plot([x for x, _ in points], losses, marker="braille")
        if suggested is not None:
            plt.vline(math.log10(suggested), color="green")
        low, high = min(losses), min(max(losses), 3 * min(losses))
        plt.ylim(low * 0.98, high * 1.02)  # the blow-up at the end would flatten the part that matters
        plot.refresh()

    @on(Button.Pressed, "#lr-use")
    def _use(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.suggestion)

    @on(Button.Pressed, "#lr-close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def action_close(self) -> None:
        self.stop.set()  # a test still running stops at its next step
        self.dismiss(None)
