"""The sentitune Textual app: five screens over one shared state, training in an App-owned thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.config import TrainConfig, load_toml
from core.errors import CoreError, TrainingError
from core.events import TrainingFailed, TrainingFinished, TrainingStarted, TrainingStopped
from core.progress import RunProgress
from tui.messages import TrainingEvent
from tui.screens.modals import ConfirmModal, ErrorModal
from tui.state import LoadedDataset

SCREENS = {  # mode -> (key, footer label, palette description)
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
        *[Binding(key, f"switch_mode('{mode}')", label, priority=True, show=False) for mode, (key, label, _) in SCREENS.items()],
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    SCREEN_KEYS = SCREENS

    config: reactive[TrainConfig] = reactive(TrainConfig, init=False)
    """The configuration the next run will use; screens replace it, never mutate it."""
    dataset: reactive[LoadedDataset | None] = reactive(None, init=False)
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
        self.pending_review: tuple[str, Path | None] | None = None
        self._quit_when_stopped = False
        self._detect_device = detect_device

    # ------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.update_subtitle()
        if self._detect_device:
            self.detect_device()
        if self.open_run is not None:
            self.switch_mode("report")
        else:
            self.switch_mode("dataset")

    @work(thread=True, exit_on_error=False, group="device")
    def detect_device(self) -> None:
        """Import torch off the UI thread and name the device in the header."""
        from core.model import device_description, resolve_device

        name = device_description(resolve_device("auto"))
        self.call_from_thread(setattr, self, "device_name", name)

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
            if self.stop_event is not None and self.stop_event.is_set():
                state = "stopping…"
        elif p.status in ("finished", "stopped", "failed"):
            state = f"last run {p.status}"
        else:
            state = "idle"
        self.sub_title = f"{self.device_name} · {state}"

    # ------------------------------------------------------------ training

    def start_training(self, config: TrainConfig | None = None) -> bool:
        """Start a run with `config` (default: the current one); False if one is already running."""
        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return False
        if config is not None:
            self.config = config
        self.stop_event = threading.Event()
        self.progress = RunProgress()
        self.training_worker = self._train(self.config, self.stop_event)
        self.progress_version += 1
        self.switch_mode("train")
        self.update_subtitle()
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="training")
    def _train(self, config: TrainConfig, stop_event: threading.Event):
        from core.train import train

        return train(config, self.runs_root, on_event=lambda e: self.post_message(TrainingEvent(e)), stop_event=stop_event)

    def on_training_event(self, message: TrainingEvent) -> None:
        event = message.event
        self.progress.apply(event)
        self.update_subtitle()
        self.progress_version += 1
        if isinstance(event, TrainingFailed):
            self.push_screen(ErrorModal(event.title, event.message))
        elif isinstance(event, TrainingFinished):
            acc = event.test.get("accuracy")
            self.notify(f"Test accuracy {acc:.1%}. See the report (F4).", title="Run finished")
        elif isinstance(event, TrainingStopped):
            self.notify("Run stopped; the model so far is saved." if event.test else "Run stopped before training began.",
                        title="Run stopped")
        if isinstance(event, (TrainingFailed, TrainingFinished, TrainingStopped, TrainingStarted)):
            self.runs_version += 1

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "training" or worker.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, TrainingError):
                pass  # already reported by the TrainingFailed event's modal
            elif isinstance(error, CoreError):
                # Bad input before a run folder existed: nothing was lost, say what to fix.
                self.progress = RunProgress()
                self.notify(str(error), title=error.title, severity="error", timeout=10)
            else:
                self.push_screen(ErrorModal("Training crashed", f"{type(error).__name__}: {error}"))
        self.update_subtitle()
        self.progress_version += 1
        self.runs_version += 1
        if self._quit_when_stopped:
            self.exit()

    def request_stop(self) -> None:
        """Ask (with confirmation) to stop the run at the next step and save it."""
        if not self.training:
            self.notify("No run is training.", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.stop_now()

        self.push_screen(ConfirmModal("Stop training now? The model so far is evaluated, tested and saved.",
                                      yes="Stop & save"), answer)

    def stop_now(self) -> None:
        """Stop the running run at its next step (no confirmation)."""
        if self.stop_event is not None and self.training:
            self.stop_event.set()
            self.notify("Stopping at the next step; evaluating and saving…", title="Stop & save")
            self.update_subtitle()

    async def action_quit(self) -> None:
        if not self.training:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._quit_when_stopped = True
                self.stop_now()
                if not self.training:
                    self.exit()

        self.push_screen(ConfirmModal("A run is training. Stop it (the model so far is saved) and quit?",
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
        for mode, (key, label, help) in SCREENS.items():
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

    from core.runs import resolve_run

    try:
        config = load_toml(config_path) if config_path else None
        open_run = resolve_run(run, runs_root) if run else None
    except CoreError as exc:
        print(f"sentitune: {exc}", file=sys.stderr)
        return 2
    create_app(runs_root, config, open_run).run()
    return 0
