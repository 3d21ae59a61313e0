"""The live training dashboard: progress, loss and metric charts, latest evaluation, log tail, Stop & save."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, ProgressBar, RichLog, Static

from core.format import format_batch, format_duration, format_event, format_kept, printable, short_name, stop_note
from core.runs.progress import RunProgress
from tui.safe import plain, sentence
from tui.screens.base import BaseScreen
from tui.widgets.curves import PALETTE, CurvesPlot, Series
from tui.widgets.report_tables import confusion_table

REDRAW_SECONDS = 0.5  # figures redraw at most this often, however fast events arrive
CHART_SECONDS = 2.0  # charts cost more to draw; training shares the CPU, so they refresh less often

NAMES = {"accuracy": "acc", "f1": "F1", "precision": "prec", "recall": "rec", "loss": "loss"}
STAGES = {
    "idle": "No run yet: set hyperparameters (F2), then Start training (ctrl+t there, or t here).",
    "start": "Starting", "wait": "Waiting for a GPU with room", "retry": "Retrying", "data": "Loading data", "model": "Loading model", "tokenize": "Tokenizing", "baseline": "Scoring the untuned model",
    "train": "Training", "test": "Testing the fine-tuned model", "save": "Saving", "finished": "Finished",
    "stopped": "Stopped", "failed": "Failed",
}


class TrainScreen(BaseScreen):
    """Renders the app's RunProgress; training itself belongs to the app and goes on when this screen is left."""

    DEFAULT_CSS = """
    TrainScreen #status { height: auto; padding: 0 1; }
    TrainScreen #status-line { text-style: bold; }
    TrainScreen #progress-row { height: 1; padding: 0 1; }
    TrainScreen #progress-row ProgressBar { width: 1fr; }
    TrainScreen #progress-row Bar { width: 1fr; }
    TrainScreen #figures { height: auto; padding: 0 1; color: $text-muted; }
    TrainScreen #charts { height: 1fr; min-height: 8; }
    TrainScreen #charts CurvesPlot { width: 1fr; min-height: 6; }
    TrainScreen #bottom { height: 1fr; min-height: 6; }
    TrainScreen #latest-box { width: 44; padding: 0 1; border-right: solid $primary-background; }
    TrainScreen #log { width: 1fr; }
    TrainScreen #buttons { height: auto; padding: 0 1; }
    TrainScreen #buttons Button { margin-right: 1; }
    TrainScreen .failed { color: $error; }
    TrainScreen #coach { height: auto; max-height: 4; padding: 0 1; background: $warning 15%; color: $text;
                         display: none; }
    TrainScreen #coach.-shown { display: block; }
    """

    BINDINGS = [
        Binding("s", "stop", "Stop & save"),
        Binding("t", "start", "Start"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="status"):
            yield Static(id="status-line")
            yield Static(id="run-line", classes="muted")
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=1, show_eta=False, id="steps")
        yield Static(id="figures")
        yield Static(id="coach")
        with Horizontal(id="charts"):
            yield CurvesPlot("loss", "step", empty="waiting for the first steps", id="loss-chart")
            yield CurvesPlot("validation", "epoch", empty="after the first evaluation", id="metrics-chart")
        with Horizontal(id="bottom"):
            with VerticalScroll(id="latest-box"):
                yield Static(id="latest")
            yield RichLog(id="log", max_lines=500, wrap=True, markup=False, min_width=20)
        with Horizontal(id="buttons"):
            yield Button("Stop & save (s)", id="stop", variant="error", compact=True)
            yield Button("Start training (t)", id="start", variant="success", compact=True)

    def on_mount(self) -> None:
        self._chart_drawn_at = 0.0
        self._chart_key: tuple = ()
        self._drawn_version = -1
        self._drawn_progress: RunProgress | None = None
        self.set_interval(REDRAW_SECONDS, self._redraw_if_dirty)
        self.redraw()

    def on_screen_resume(self) -> None:
        self.redraw(charts=True)

    def _redraw_if_dirty(self) -> None:
        if not self.is_current:
            return  # hidden: redraw when shown again (on_screen_resume)
        if self.app.progress_version != self._drawn_version or self.app.progress is not self._drawn_progress:
            self.redraw()

    # ------------------------------------------------------------ drawing

    def redraw(self, charts: bool = False) -> None:
        """Redraw from the app's RunProgress; the charts only every CHART_SECONDS unless something
        they show besides training loss changed (a new run, an evaluation, the end)."""
        p: RunProgress = self.app.progress
        self._drawn_version = self.app.progress_version
        new_run = p is not self._drawn_progress
        self._drawn_progress = p
        self._draw_status(p)
        self._draw_figures(p)
        self._draw_coach(p)
        key = (id(p), len(p.validation), p.status, p.test is not None)
        now = time.monotonic()
        if charts or key != self._chart_key or now - self._chart_drawn_at >= CHART_SECONDS:
            self._chart_key, self._chart_drawn_at = key, now
            self._draw_charts(p)
            self._draw_latest(p)
        self._draw_log(p, new_run)
        training = self.app.training
        self.query_one("#stop", Button).disabled = not training
        self.query_one("#start", Button).disabled = training

    def _draw_status(self, p: RunProgress) -> None:
        label = STAGES.get(p.stage, p.stage)
        if p.stage not in ("idle", "finished", "stopped", "failed") and p.detail and p.detail.lower() not in label.lower():
            label = f"{label}: {p.detail}"
        live = self.app.live
        if self.app.training and live is not None and live.stop_asked and p.stage == live.stop_stage:
            label = ("Stopping at the next step, then evaluating and saving…" if p.stage == "train"
                     else f"Stopping: {stop_note(p.stage)}…")
        if p.stage == "stopped" and p.stopped is not None:
            label = sentence(format_event(p.stopped))  # whether a model was saved and tested
            pruned = getattr(self.app, "pruned", None)
            if pruned and pruned[0] and p.run_dir and Path(pruned[0]).name == Path(p.run_dir).name:
                label = f"Pruned: {pruned[1]}."  # a sweep's pruner stopped it, not the user
        sweep = self.app.sweep
        if sweep is not None and self.app.training:  # which run of the sweep this dashboard shows
            from core.experiments.plan import describe

            label = f"Sweep run {sweep.index} of {sweep.total} ({describe(sweep.settings)}) · {label}"
        status = self.query_one("#status-line", Static)
        status.update(plain(label if not p.error else f"Failed: {p.error.message}"))
        status.set_class(p.error is not None, "failed")
        run = ""
        if p.started:
            s = p.started
            batch = format_batch(s.per_device_batch or s.effective_batch, s.processes, s.gradient_accumulation)
            run = f"{short_name(s.model)} on {short_name(s.dataset)} · {s.device} · {s.precision} · {batch} · run {short_name(s.run_dir)}"
        elif p.run_dir:
            run = f"run {short_name(p.run_dir)}"
        if self.app.gpu_line:  # a shared box: how much room the GPU has left, and how many others use it
            run = f"{run} · {self.app.gpu_line}" if run else self.app.gpu_line
        self.query_one("#run-line", Static).update(plain(run))
        bar = self.query_one("#steps", ProgressBar)
        bar.update(total=max(p.total_steps, 1), progress=p.step)

    def _draw_coach(self, p: RunProgress) -> None:
        """What the coach noticed: the newest first, with its advice; the older ones one line each (in the log too)."""
        coach = self.query_one("#coach", Static)
        coach.set_class(bool(p.diagnostics), "-shown")
        if not p.diagnostics:
            return
        newest, *older = reversed(p.diagnostics)
        lines = [f"⚠ coach: {newest.message} (step {newest.step}). {sentence(newest.advice)}"]
        if older:
            lines.append("also: " + "; ".join(f"{d.kind.replace('_', ' ')} (step {d.step})" for d in older))
        coach.update(plain("\n".join(lines)))

    def _draw_figures(self, p: RunProgress) -> None:
        s = p.last_step
        if s is None:
            text = f"step 0/{p.total_steps}" if p.started else ""
        else:
            epochs = p.started.epochs if p.started else 0
            parts = [f"step {s.step}/{s.total_steps}", f"epoch {s.epoch:.2f}/{epochs}",
                     f"elapsed {format_duration(p.elapsed)}"]
            stopping = self.app.live is not None and self.app.live.stop_asked
            if p.stage == "train" and not p.done and not stopping:  # an ETA only while it trains on
                parts.append(f"ETA {format_duration(s.eta)}")
            parts.append(f"{s.samples_per_second:.1f} samples/s")
            if s.learning_rate is not None:
                parts.append(f"lr {s.learning_rate:.2e}")
            if s.gpu_memory_used is not None and s.gpu_memory_total:
                parts.append(f"GPU {s.gpu_memory_used / 2**30:.1f}/{s.gpu_memory_total / 2**30:.1f} GiB")
            text = " · ".join(parts)
        kept = format_kept(p.kept) if p.done else None
        if kept:
            text += f"\n{sentence(kept)}"
        self.query_one("#figures", Static).update(text)

    def _draw_charts(self, p: RunProgress) -> None:
        self.query_one("#loss-chart", CurvesPlot).show([
            Series("train", p.train_loss, PALETTE[0]),
            Series("validation", p.validation_loss, PALETTE[1]),
        ])
        self.query_one("#metrics-chart", CurvesPlot).show([
            Series("accuracy", p.curve("accuracy"), PALETTE[2]),
            Series("F1", p.curve("f1"), PALETTE[3]),
        ])

    def _draw_latest(self, p: RunProgress) -> None:
        e = p.latest_eval
        if e is None:
            text = "No evaluation yet."
            if p.baseline is not None:
                text = f"Baseline before fine-tuning:\naccuracy {p.baseline.metrics.get('accuracy', 0):.1%}"
            self.query_one("#latest", Static).update(text)
            return
        title = "Test (final model)" if e.split == "test" else f"Validation, epoch {e.epoch:.2f}"
        m = e.metrics

        def figures(*keys: str) -> str:
            return "  ".join(f"{NAMES[k]} {m[k]:.4f}" for k in keys if k in m)

        # Compact, so the confusion matrix fits below it at 100x30.
        lines = [figures("accuracy", "f1"), figures("precision", "recall", "loss")]
        if e.split == "test" and p.gain:  # the baseline is scored on test; losses show as plainly as gains
            lines.append("vs untuned: " + ", ".join(f"{NAMES[k]} {v:+.1f} pts" for k, v in p.gain.items()))
        parts = [Text(title, style="bold"), Text(printable("\n".join(lines)))]
        if e.confusion_matrix:  # the same table as the report's, so 3 classes never wrap
            parts.append(confusion_table(e.confusion_matrix, e.label_names, title=None))
        self.query_one("#latest", Static).update(Group(*parts))

    def on_resize(self) -> None:
        """Write the log again at the new width (RichLog wraps lines as they are written)."""
        self._log_drawn = -1
        self.redraw()

    def _draw_log(self, p: RunProgress, new_run: bool) -> None:
        """Write the lines added since the last draw (counted over the whole run: the progress keeps only the
        last LOG_LINES, so their number stops growing while new ones keep coming)."""
        log = self.query_one("#log", RichLog)
        drawn = getattr(self, "_log_drawn", 0)
        if new_run or not 0 <= drawn <= p.log_total:
            log.clear()
            drawn = p.log_total - len(p.log)
        new = p.log_total - drawn
        for line in list(p.log)[len(p.log) - min(new, len(p.log)):] if new else []:
            log.write(printable(line))
        self._log_drawn = p.log_total

    # ------------------------------------------------------------ actions

    def action_stop(self) -> None:
        self.app.request_stop()

    def action_start(self) -> None:
        self.app.confirm_start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "stop":
            self.action_stop()
        elif event.button.id == "start":
            self.action_start()
