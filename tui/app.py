"""The sentitune Textual app: five screens over one shared state, training in an App-owned thread."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.config import TrainConfig, load_toml
from core.errors import CoreError, TrainingError
from core.events import Resumed, TrainingFailed, TrainingFinished, TrainingStarted, TrainingStopped
from core.format import format_event, printable, stop_note
from core.runs import layout
from core.runs.layout import ENDED, LIVE
from core.runs.progress import RunProgress
from tui.messages import TrainingEvent
from tui.safe import notify_error, sentence
from tui.screens.modals import ConfirmModal, ErrorModal

MODES = {  # mode -> (key, footer label, palette description)
    "dataset": ("f1", "Data", "Dataset preview: source, columns, rows, balance, lengths"),
    "params": ("f2", "Params", "Hyperparameters: edit, presets, save/load TOML, start training"),
    "train": ("f3", "Train", "Training dashboard: progress, charts, Stop & save"),
    "report": ("f4", "Report", "Report: runs, metrics, baseline gain, errors, compare"),
    "predict": ("f5", "Predict", "Prediction console: type a review, get its sentiment"),
}


def _modes() -> dict:
    from tui.screens.dataset_screen import DatasetScreen
    from tui.screens.params_screen import ParamsScreen
    from tui.screens.predict_screen import PredictScreen
    from tui.screens.report_screen import ReportScreen
    from tui.screens.train_screen import TrainScreen

    return {"dataset": DatasetScreen, "params": ParamsScreen, "train": TrainScreen,
            "report": ReportScreen, "predict": PredictScreen}


class SentituneApp(App):
    """Configure, watch, stop, evaluate and query a fine-tune from one terminal."""

    TITLE = "sentitune"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        # Shown in the ScreenKeys bar above the footer, which always has room for all five.
        *[Binding(key, f"switch_mode('{mode}')", label, priority=True, show=False) for mode, (key, label, _) in MODES.items()],
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    SCREEN_KEYS = MODES

    config: reactive[TrainConfig] = reactive(TrainConfig, init=False)
    """The configuration the next run will use; screens replace it, never mutate it."""
    dataset: reactive[Any] = reactive(None, init=False)  # core.data.stats.Preview, once F1 loaded one
    """The dataset last loaded for preview."""
    device_name: reactive[str] = reactive("detecting device…", init=False)
    progress_version: reactive[int] = reactive(0, init=False)
    """Bumped whenever `progress` changes; the dashboard watches it and redraws (throttled)."""
    runs_version: reactive[int] = reactive(0, init=False)
    """Bumped whenever a run is created or ends; lists of runs watch it and reload."""

    def __init__(
        self,
        runs_root: str | Path = "runs",
        config: TrainConfig | None = None,
        open_run: str | Path | None = None,
        detect_device: bool = True,
    ) -> None:
        self.MODES = _modes()
        super().__init__()
        self.runs_root = Path(runs_root)
        self.set_reactive(SentituneApp.config, config or TrainConfig())
        self.open_run = Path(open_run) if open_run else None
        self.progress = RunProgress()
        self.stop_event: threading.Event | None = None
        self.training_worker: Worker | None = None
        self.attached_run: Path | None = None  # set while following a run that another process trains
        self.stop_requested = False  # Stop & save was asked for the run shown live
        self.stop_stage: str | None = None  # the stage it was asked in (a stop in training still tests)
        self.stopped: TrainingStopped | None = None  # how the run shown live was stopped, if it was
        self.pending_review: tuple[str, Path | None] | None = None
        self._quit_when_stopped = False
        self._detect_device = detect_device

    # ------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.update_subtitle()
        if self._detect_device:
            # After the first screen is drawn: importing torch takes seconds and must not delay it.
            self.set_timer(0.2, self.detect_device)
        self.announce_background_runs()
        if self.open_run is not None:
            self.switch_mode("report")
        else:
            self.switch_mode("dataset")

    @work(thread=True, exit_on_error=False, group="device")
    def detect_device(self) -> None:
        """Import torch off the UI thread and name the device in the header."""
        from core.training.model import device_description, resolve_device

        name = device_description(resolve_device("auto"))
        self.call_from_thread(setattr, self, "device_name", name)

    @work(thread=True, exit_on_error=False, group="scan")
    def announce_background_runs(self) -> None:
        """Tell the user about runs still training in other processes (started with --detach, or before a
        dropped SSH session), so they can re-attach."""
        from core.runs.store import list_runs

        live = [r for r in list_runs(self.runs_root) if r.status in LIVE]
        if live:
            names = ", ".join(r.name for r in live[:3])
            self.call_from_thread(
                self.notify, printable(f"{names}. Open it in the report (F4) and press a to attach."),
                title=f"{len(live)} run{'s' if len(live) > 1 else ''} training in the background", timeout=15,
                markup=False,
            )

    def watch_device_name(self) -> None:
        self.update_subtitle()

    @property
    def training(self) -> bool:
        """True while a training worker is running."""
        return self.training_worker is not None and self.training_worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def update_subtitle(self) -> None:
        p = self.progress
        if self.training:
            state = f"training {p.fraction:.0%}" if p.stage == "train" else f"run: {p.stage}"
            if self.stop_requested:
                state = "stopping…"
            elif self.attached_run is not None:
                state += " (background process)"
        elif p.status in ENDED:
            state = f"last run {p.status}"
        else:
            state = "idle"
        self.sub_title = f"{self.device_name} · {state}"

    # ------------------------------------------------------------ training

    def start_training(self, config: TrainConfig | None = None, detached: bool = False) -> bool:
        """Start a run with `config` (default: the current one); False if one is already running.

        `detached` trains in a separate process that survives the terminal closing; the app follows it.
        """
        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return False
        if config is not None:
            self.config = config
        from core.training.distributed import needs_launcher

        if detached or needs_launcher(self.config):  # several processes always run on their own
            from core.training.background import start_detached

            return self.attach_run(start_detached(self.config, self.runs_root))
        self._begin(RunProgress(), lambda stop: self._train(self.config, stop))
        return True

    def resume_run(self, run_dir: Path) -> bool:
        """Continue a stopped, failed or interrupted run from its last checkpoint, in this process."""
        from core.events import read_events
        from core.runs.checkpoints import last_complete_checkpoint

        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return False
        try:
            last_complete_checkpoint(run_dir)
        except CoreError as exc:
            notify_error(self, exc)
            return False
        history = RunProgress.from_events(read_events(Path(run_dir) / layout.EVENTS))
        self._begin(history, lambda stop: self._resume(Path(run_dir), stop))
        return True

    def attach_run(self, run_dir: Path) -> bool:
        """Show a run another process is training: its whole history, then live events."""
        if self.training:
            self.notify("A run is already shown live; wait for it or stop it first.", severity="warning")
            return False
        self.attached_run = Path(run_dir)
        self._begin(RunProgress(), lambda stop: self._follow(Path(run_dir), stop))
        return True

    def _begin(self, progress: RunProgress, start) -> None:
        """Reset the dashboard to `progress`, start the worker, and show the dashboard."""
        self.stop_event = threading.Event()
        self.stop_requested = False
        self.stop_stage = None
        self.stopped = None
        self.progress = progress
        self.training_worker = start(self.stop_event)
        self.progress_version += 1
        self.switch_mode("train")
        self.update_subtitle()

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="training")
    def _train(self, config: TrainConfig, stop_event: threading.Event):
        from core.training.train import train

        return train(config, self.runs_root, on_event=lambda e: self.post_message(TrainingEvent(e)), stop_event=stop_event)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="resume")
    def _resume(self, run_dir: Path, stop_event: threading.Event):
        from core.training.train import resume

        return resume(run_dir, on_event=lambda e: self.post_message(TrainingEvent(e)), stop_event=stop_event)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="follow")
    def _follow(self, run_dir: Path, stop_event: threading.Event) -> None:
        from core.training.background import follow_events

        for event in follow_events(run_dir, stop=stop_event.is_set):
            self.post_message(TrainingEvent(event))

    def on_training_event(self, message: TrainingEvent) -> None:
        event = message.event
        self.progress.apply(event)
        self.update_subtitle()
        self.progress_version += 1
        if isinstance(event, TrainingFailed):
            self._report_failure(event)
        elif isinstance(event, TrainingFinished):
            acc = event.test.get("accuracy")
            self.notify(f"Test accuracy {acc:.1%}. See the report (F4).", title="Run finished")
        elif isinstance(event, TrainingStopped):
            self.stopped = event
            # core's wording says whether a model was saved and tested
            self.notify(f"{sentence(format_event(event))}.", title="Run stopped", markup=False)
        elif isinstance(event, Resumed):
            self.stopped = None  # a followed run that was stopped before goes on
        if isinstance(event, (TrainingFailed, TrainingFinished, TrainingStopped, TrainingStarted)):
            self.runs_version += 1

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "training" or worker.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, TrainingError):
                # Reported by the TrainingFailed event's modal. The error's traceback still holds the failed
                # run's model, gradients and optimizer state: free them before any retry needs the memory.
                from core.training.oom import release_failure

                release_failure(error)
            elif isinstance(error, CoreError):
                # Bad input before a run folder existed: nothing was lost, say what to fix.
                self.progress = RunProgress()
                notify_error(self, error, timeout=10)
            else:
                self.push_screen(ErrorModal("Training crashed", f"{type(error).__name__}: {error}"))
        self.attached_run = None
        self.update_subtitle()
        self.progress_version += 1
        self.runs_version += 1
        if self._quit_when_stopped:
            self.exit()

    def _report_failure(self, event: TrainingFailed) -> None:
        """A modal with what happened; out of GPU memory also offers the same run at half the batch."""

        retry = None
        evaluating = event.kind == "oom_eval"
        if event.kind in ("oom", "oom_eval"):
            from core.runs.store import Run
            from core.training.oom import half_batch

            try:
                retry = half_batch(Run(event.run_dir).train_config(), evaluating)
            except CoreError:
                retry = None
        if retry is None:
            self.push_screen(ErrorModal(event.title, event.message))
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.start_training(retry)

        if evaluating:
            question = f"Retry now with eval_batch_size {retry.eval_batch_size}? Training is unchanged."
            yes = f"Retry with eval batch {retry.eval_batch_size}"
        else:
            question = (f"Retry now with batch_size {retry.batch_size} and gradient_accumulation "
                        f"{retry.gradient_accumulation}? The effective batch stays the same.")
            yes = f"Retry with batch {retry.batch_size} x {retry.gradient_accumulation}"
        self.push_screen(ConfirmModal(f"{event.title}: {event.message}\n\n{question}", yes=yes, no="Close"), answer)

    def request_stop(self) -> None:
        """Ask (with confirmation) to stop the run at the next step and save it."""
        if not self.training:
            self.notify("No run is training.", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.stop_now()

        self.push_screen(ConfirmModal(f"Stop training now? Now {stop_note(self.progress.stage)}.",
                                      yes="Stop & save"), answer)

    def stop_now(self) -> None:
        """Stop the running run at its next step (no confirmation)."""
        if self.attached_run is not None and self.training:
            from core.training.background import request_stop

            try:
                request_stop(self.attached_run)  # the run's own process stops, evaluates and saves
            except CoreError as exc:
                notify_error(self, exc)
                return
            self.stop_requested, self.stop_stage = True, self.progress.stage
            self.notify(f"Asked the run to stop: {stop_note(self.progress.stage)}.", title="Stop & save")
            self.update_subtitle()
            return
        if self.stop_event is not None and self.training:
            self.stop_event.set()
            self.stop_requested, self.stop_stage = True, self.progress.stage
            self.notify(f"Stopping: {stop_note(self.progress.stage)}.", title="Stop & save")
            self.update_subtitle()

    async def action_quit(self) -> None:
        if self.attached_run is not None and self.stop_event is not None:
            self.stop_event.set()  # stop following; the run's own process goes on
        if not self.training or self.attached_run is not None:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._quit_when_stopped = True
                self.stop_now()
                if not self.training:
                    self.exit()

        self.push_screen(ConfirmModal(f"A run is training. Stop it and quit? Now {stop_note(self.progress.stage)}.",
                                      yes="Stop & quit"), answer)

    # ------------------------------------------------------------ shared helpers for screens

    def send_to_console(self, text: str, run: Path | None = None) -> None:
        """Open the prediction console with `text` in its input (and `run`'s model selected)."""
        self.pending_review = (text, run)
        self.switch_mode("predict")
        screen = self.screen
        if hasattr(screen, "take_pending_review"):
            screen.take_pending_review()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (key, label, help) in MODES.items():
            yield SystemCommand(f"Go to {label} ({key.upper()})", help, lambda m=mode: self.switch_mode(m))
        yield SystemCommand("Start training", "Train with the current hyperparameters", self.start_training)
        yield SystemCommand("Stop & save", "Stop the running run at the next step and save it", self.request_stop)


def create_app(runs_root: str | Path = "runs", config: TrainConfig | None = None,
               open_run: str | Path | None = None, detect_device: bool = True) -> SentituneApp:
    """The app factory: tests hand it a temporary runs folder and a tiny-model config."""
    return SentituneApp(runs_root=runs_root, config=config, open_run=open_run, detect_device=detect_device)


def run_app(config_path: str | None = None, run: str | None = None, runs_root: str = "runs") -> int:
    """Entry point for `sentitune` with no subcommand."""
    import sys

    from core.runs.store import resolve_run

    try:
        config = load_toml(config_path) if config_path else None
        open_run = resolve_run(run, runs_root) if run else None
    except CoreError as exc:
        print(f"sentitune: {exc}", file=sys.stderr)
        return 2
    create_app(runs_root, config, open_run).run()
    return 0
