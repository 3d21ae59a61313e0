"""The prediction console: pick a trained model, type or paste a review, see its sentiment and how sure the model is."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from core.errors import CoreError
from core.format import clip, printable
from tui.safe import notify_error, plain
from tui.screens.base import BaseScreen
from tui.widgets.confidence import ConfidenceView
from tui.widgets.explanation import ExplanationView
from tui.widgets.predict_history import PredictHistory
from tui.widgets.predict_model import ModelPicker
from tui.widgets.predict_panels import BatchStatus, PathPrompt, ReviewInput, SamplePicker

SAMPLES = [
    "An absolute delight from start to finish: a wonderful cast and an ending that made me cry.",
    "One of the best films of the year. Smart, funny and beautifully shot.",
    "A dull, lifeless mess. I checked my watch every ten minutes.",
    "The worst acting I have ever sat through, and the plot makes no sense at all.",
    "The visuals are stunning, but the story is thin and the second half drags.",
    "Not bad, not great. It passes the time on a rainy afternoon.",
    "Oh great, another sequel nobody asked for. Just what I needed.",
    "I loved how it wasted two hours of my life. Truly a masterpiece of boredom.",
]
"""Built-in reviews one key away (ctrl+n): clearly positive, clearly negative, mixed, sarcastic."""

EMPTY_REVIEW = "the review is empty; type some text"
HINT = ("Type a review and press Enter: its label, the model's confidence, the latency.\n"
        "ctrl+n / ctrl+b samples · ctrl+o predict a file · ctrl+s save CSV")
HISTORY_BATCH_ROWS = 200  # a batch adds at most this many rows to the history; the CSV has them all
BATCH_CHUNK = 256  # reviews per progress update


def format_latency(seconds: float) -> str:
    """How long one prediction took, as shown on screen (the snapshot test patches this to hide timing)."""
    return f"{seconds * 1000:.1f} ms"


class PredictScreen(BaseScreen):
    """Query a trained model: one review at a time, built-in samples, or a whole file."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    BINDINGS = [
        Binding("ctrl+n", "sample(1)", "Next sample", priority=True),
        Binding("ctrl+b", "sample(-1)", "Prev sample", priority=True),
        Binding("ctrl+o", "open_file", "Predict file", priority=True),
        Binding("ctrl+s", "save_csv", "Save CSV", priority=True),
        Binding("ctrl+l", "use_newest", "Newest run", priority=True),
    ]
    DEFAULT_CSS = """
    PredictScreen.-wide ModelPicker Select { width: 2fr; }
    PredictScreen.-wide ModelPicker Input { width: 1fr; }
    PredictScreen #predict-left { width: 2fr; }
    PredictScreen #predict-hint { height: 1; padding: 0 1; color: $text-muted; }
    PredictScreen #predict-error { padding: 0 1; color: $error; text-style: bold; display: none; }
    PredictScreen #predict-error.-shown { display: block; }
    PredictScreen SamplePicker { width: 1fr; padding-left: 1; display: none; }
    PredictScreen.-wide SamplePicker { display: block; }
    PredictScreen.-wide #predict-hint { display: none; }
    """

    class BatchProgress(Message):
        """How many of a file's reviews are predicted so far (posted from the batch thread)."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done, self.total = done, total

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: deque[str] = deque()  # reviews waiting for the model or for the previous prediction
        self._predicting = False
        self._sample = -1
        self._batch: list[Any] = []  # the last file's predictions
        self._session: list[Any] = []  # every prediction of this session, typed or from files: what ctrl+s saves

    @property
    def predictor(self) -> Any:
        """The loaded core.predict.Predictor of the picked model, or None while there is none (or it loads)."""
        return self.query_one(ModelPicker).predictor

    def compose_body(self) -> ComposeResult:
        yield ModelPicker(self.app.runs_root)
        with Horizontal():
            with Vertical(id="predict-left"):
                yield ReviewInput(placeholder="Type or paste a review, Enter to predict", id="predict-review")
                yield Static(id="predict-hint")
                yield Static(id="predict-error")
                yield ConfidenceView(HINT)
                yield ExplanationView(id="explanation")
                yield BatchStatus()
                yield PathPrompt()
                yield PredictHistory()
            yield SamplePicker(SAMPLES, "Samples (ctrl+n / ctrl+b)")

    def on_mount(self) -> None:
        self._show_hint()
        self.watch(self.app, "runs_version", self.query_one(ModelPicker).refresh_runs, init=False)
        self.query_one("#predict-review", Input).focus()
        self.take_pending_review()

    def on_screen_resume(self) -> None:
        self.take_pending_review()

    def on_model_picker_changed(self, message: ModelPicker.Changed) -> None:
        if message.failed:
            self._queue.clear()  # those reviews were meant for the model that failed
        self._pump()

    # ------------------------------------------------------------ predicting reviews

    @on(Input.Submitted, "#predict-review")
    def _review_entered(self, event: Input.Submitted) -> None:
        event.stop()  # the box emptied itself on Enter (keys typed after Enter are the next review's)
        if not self.predict_text(event.value) and not event.input.value:
            event.input.value = event.value  # not predicted (no model): the text stays to be sent again

    def predict_text(self, text: str) -> bool:
        """Predict `text` as soon as the model is ready (after any earlier reviews); False if it cannot be."""
        if not text.strip():
            self._show_error(EMPTY_REVIEW)
        elif self.query_one(ModelPicker).no_model:
            self._show_error(self.query_one(ModelPicker).missing)
        else:
            self._show_error(None)
            self._queue.append(text)
            self._pump()
            return True
        return False

    def _pump(self) -> None:
        """Start the next queued prediction; one at a time so the history keeps the order they were asked in."""
        if self.query_one(ModelPicker).no_model and self._queue:
            self._queue.clear()
            self._show_error(self.query_one(ModelPicker).missing)
        if not self._predicting and self._queue and self.predictor is not None:
            self._predicting = True
            self._predict(self.predictor, self._queue.popleft())

    @work(thread=True, exit_on_error=False, group="predict-one")
    def _predict(self, predictor: Any, text: str) -> tuple[Any, float]:
        with predictor.lock:  # the latency counts this review only, not a file that held the model before it
            start = time.perf_counter()
            prediction = predictor.predict([text])[0]
            return prediction, time.perf_counter() - start

    def _show_error(self, message: str | None) -> None:
        error = self.query_one("#predict-error", Static)
        error.update(plain(message or ""))
        error.set_class(bool(message), "-shown")

    def action_sample(self, step: int) -> None:
        """Put the next (or previous) built-in sample in the review box and predict it."""
        self._try_sample((self._sample + step) % len(SAMPLES))

    def action_use_newest(self) -> None:
        """Switch to the newest finished run's model (offered after one finishes while another was picked), or
        load it again after its load failed."""
        if not self.query_one(ModelPicker).use_newest():
            self.notify("The newest run's model is already in use.", title="Model")

    def on_sample_picker_picked(self, message: SamplePicker.Picked) -> None:
        self._try_sample(message.index)

    def _try_sample(self, index: int) -> None:
        self._sample = index
        self.query_one(SamplePicker).highlight(index)
        self.query_one("#predict-review", Input).value = SAMPLES[index]
        self._show_hint()
        self.predict_text(SAMPLES[index])

    def _show_hint(self) -> None:
        upcoming = (self._sample + 1) % len(SAMPLES)
        self.query_one("#predict-hint", Static).update(
            f"ctrl+n sample {upcoming + 1}/{len(SAMPLES)}: “{clip(SAMPLES[upcoming], 52)}”")

    def take_pending_review(self) -> None:
        """Predict the review another screen sent with `app.send_to_console` (with its run's model)."""
        if not self.is_mounted or self.app.pending_review is None:
            return
        text, run = self.app.pending_review
        self.app.pending_review = None
        if run is not None:
            self.query_one(ModelPicker).use(run, by_hand=True)
        review = self.query_one("#predict-review", Input)
        review.value = text  # shown with control characters escaped; the review itself is predicted as sent
        review.focus()
        self.predict_text(text)

    # ------------------------------------------------------------ batch: predict a file, save CSV

    def action_open_file(self) -> None:
        self.query_one(PathPrompt).ask("open", "Predict file:", "",
                                       "a .txt (one review per line) or .csv (text column; a label column scores it)")

    def action_save_csv(self) -> None:
        predictions, source = self._saveable()
        if not predictions:
            self.notify("Nothing to save yet: predict a file (ctrl+o) or a review first.", severity="warning")
        else:
            self.query_one(PathPrompt).ask("save", f"Save {len(predictions)} {source} predictions to:",
                                           "predictions.csv", "a .csv path")

    def _saveable(self) -> tuple[list[Any], str]:
        """What Save CSV writes: every prediction of this session, typed reviews and whole files alike."""
        return self._session, "session"

    def on_path_prompt_answered(self, message: PathPrompt.Answered) -> None:
        self.query_one("#predict-review", Input).focus()
        if message.path is None:
            return
        if message.mode == "save":
            self._save(self._saveable()[0], message.path)
        elif self.predictor is None:
            self.notify(self.query_one(ModelPicker).missing if self.query_one(ModelPicker).no_model
                        else "The model is still loading; try again.",
                        severity="warning")
        elif any(w.group == "predict-batch" and not w.is_finished for w in self.workers):
            self.notify("A file is already being predicted; wait for it to finish.", severity="warning")
        else:
            self.query_one(BatchStatus).started(Path(message.path).name)  # escaped by BatchStatus
            self._predict_file(self.predictor, message.path)

    @work(thread=True, exit_on_error=False, group="predict-batch")
    def _predict_file(self, predictor: Any, path: str) -> tuple[str, list[Any], Any]:
        from core.review_files import read_review_file, summarize_batch, trained_text_columns, true_labels

        reviews = read_review_file(path, trained_text_columns(getattr(predictor, "model_dir", None)))
        texts, blanks = reviews.texts, reviews.blanks
        truth = true_labels(reviews.labels, predictor.label_names) if reviews.labels else None
        self.post_message(self.BatchProgress(0, len(texts)))
        start, predictions = time.perf_counter(), []
        for i in range(0, len(texts), BATCH_CHUNK):
            predictions += predictor.predict(texts[i:i + BATCH_CHUNK])
            self.post_message(self.BatchProgress(len(predictions), len(texts)))
        if truth is not None:  # the file's own labels: kept with each prediction, and the batch is scored
            predictions = [dataclasses.replace(p, true_label=t) for p, t in zip(predictions, truth)]
        summary = summarize_batch(predictions, blanks, time.perf_counter() - start, predictor.label_names)
        if reviews.labels and truth is None:
            summary = dataclasses.replace(summary, label_note="its labels do not match the model's, so it is not scored")
        return Path(path).name, predictions, summary

    def on_predict_screen_batch_progress(self, message: BatchProgress) -> None:
        self.query_one(BatchStatus).progress(message.done, message.total)

    @work(thread=True, exit_on_error=False, group="predict-save")
    def _save(self, predictions: list[Any], path: str) -> tuple[Path, int]:
        from core.review_files import check_save_path, write_predictions_csv

        # A device, FIFO or /dev/stdout is refused; a link is written through, as `predict --save` does
        return write_predictions_csv(predictions, check_save_path(path)), len(predictions)

    # ------------------------------------------------------------ worker results (UI thread)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker, group = event.worker, event.worker.group
        if not group.startswith("predict-") or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if event.state == WorkerState.ERROR:
            self._failed(worker, worker.error)
        elif group == "predict-one":
            prediction, seconds = worker.result
            latency = format_latency(seconds)
            self.query_one(ConfidenceView).show(prediction, latency)
            if not self._queue:  # reviews still waiting would replace it at once: only the last one is explained
                self.query_one(ExplanationView).explain(self.predictor, prediction.text)
            self.query_one(PredictHistory).add_predictions([(prediction, latency)])
            self._session.append(prediction)
            self._predicting = False
            self._pump()
        elif group == "predict-batch":
            name, self._batch, summary = worker.result
            self._session += self._batch
            more = f" (first {HISTORY_BATCH_ROWS} in the history)" if len(self._batch) > HISTORY_BATCH_ROWS else ""
            self.query_one(BatchStatus).finished(f"{name}: {summary.describe()}{more} · ctrl+s saves CSV", summary.scores)
            self.query_one(PredictHistory).add_predictions((p, "batch") for p in self._batch[:HISTORY_BATCH_ROWS])
        elif group == "predict-save":
            path, n = worker.result
            self.notify(printable(f"Saved {n} predictions to {path}"), title="Save CSV", markup=False)

    def _failed(self, worker: Worker, error: BaseException | None) -> None:
        """Report a worker's failure and keep everything the user had."""
        notify_error(self, error, timeout=8)
        if worker.group == "predict-one":
            self._predicting = False
            if isinstance(error, CoreError):
                self._show_error(str(error))
            self._pump()
        elif worker.group == "predict-batch":
            self.query_one(BatchStatus).finished(
                f"the file was not predicted; the last file's {len(self._batch)} predictions are kept"
                if self._batch else "the file was not predicted")
