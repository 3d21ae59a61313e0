"""The sentitune Textual app: five screens over one shared state, training in an App-owned thread."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.config import TrainConfig, last_config, load_toml
from core.errors import CoreError
from core.format import printable
from core.runs.layout import ENDED, LIVE
from core.runs.progress import RunProgress
from tui.live import LiveView
from tui.messages import SweepPoint
from tui.sweeps import SweepControl
from tui.training import TrainingControl

GPU_LOOK_SECONDS = 5.0  # how often the header looks at the GPU's free memory and its other processes

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


class SentituneApp(SweepControl, TrainingControl, App):
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
        watch_seconds: float = 2.0,
    ) -> None:
        self.MODES = _modes()
        super().__init__()
        self.runs_root = Path(runs_root)
        self.set_reactive(SentituneApp.config, config or TrainConfig())
        self.open_run = Path(open_run) if open_run else None
        self.progress = RunProgress()
        self.training_worker: Worker | None = None
        self.live: LiveView | None = None  # the run or sweep the dashboard shows live, and how to stop it
        self.pending_review: tuple[str, Path | None] | None = None
        self.newest_run: Path | None = None  # the run that ended last in this app: F4 selects it, F5 uses its model
        self.sweep: SweepPoint | None = None  # the sweep being trained, at its current run
        self.pruned: tuple[str | None, str | None] | None = None  # (run folder, why) of a sweep run just pruned
        self._quit_when_stopped = False
        self._detect_device = detect_device
        self._watch_seconds = watch_seconds
        self.gpu_line: str | None = None
        """The GPU this app would train on: its free memory and how many other processes use it ('' without
        NVML; None until looked at)."""

    # ------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.update_subtitle()
        # Runs change on disk behind the app (`sentitune export`, a detached run ending, another SSH session):
        # look every few seconds, and bump runs_version so every list of runs reloads.
        self._runs_seen: tuple | None = None
        self.set_interval(self._watch_seconds, self._look_at_runs)
        if self._detect_device:  # a shared GPU box: free memory and other users' processes, in the header
            self.set_interval(GPU_LOOK_SECONDS, self._look_at_gpus)
        if self._detect_device:
            # After the first screen is drawn: importing torch takes seconds and must not delay it.
            self.set_timer(0.2, self.detect_device)
        self.announce_background_runs()
        if self.open_run is not None:
            self.switch_mode("report")
        else:
            self.switch_mode("dataset")

    def _look_at_runs(self) -> None:
        self._fingerprint_runs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-watch")
    def _fingerprint_runs(self) -> None:
        from core.runs.store import runs_fingerprint

        seen = runs_fingerprint(self.runs_root)
        self.call_from_thread(self._runs_looked_at, seen)

    def _runs_looked_at(self, seen: tuple) -> None:
        if self._runs_seen is not None and seen != self._runs_seen:
            self.runs_version += 1
        self._runs_seen = seen

    def _look_at_gpus(self) -> None:
        if self.gpu_line != "":  # "" once NVML turned out to be missing: nothing to look at
            self._gpu_status()

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpu-watch")
    def _gpu_status(self) -> None:
        from core.training.gpus import list_gpus, status_line

        line = status_line(list_gpus())
        self.call_from_thread(self._gpu_looked_at, line or "")

    def _gpu_looked_at(self, line: str) -> None:
        if line != self.gpu_line:
            self.gpu_line = line
            self.update_subtitle()
            self.progress_version += 1  # F3 shows it too

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
                title=f"{len(live)} run{'s' if len(live) > 1 else ''} training in other processes", timeout=15,
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
        live = self.live
        if self.training and live is not None:
            state = f"training {p.fraction:.0%}" if p.stage == "train" else f"run: {p.stage}"
            if live.stop_asked:
                state = "stopping…"
            elif not live.in_process:
                state += " (another process)"
            if self.sweep is not None:
                state = f"sweep run {self.sweep.index}/{self.sweep.total} · {state}"
        elif p.status in ENDED:
            state = f"last run {p.status}"
        else:
            state = "idle"
        gpu = f" · {self.gpu_line}" if self.gpu_line else ""
        self.sub_title = f"{self.device_name}{gpu} · {state}"

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
        yield SystemCommand("Start training", "Train with the current hyperparameters", self.confirm_start)
        yield SystemCommand("Start training in background", "Train in a separate process that survives the SSH "
                            "session ending", lambda: self.confirm_start(detached=True))
        yield SystemCommand("Stop & save", "Stop the running run at the next step and save it", self.request_stop)


def create_app(runs_root: str | Path = "runs", config: TrainConfig | None = None,
               open_run: str | Path | None = None, detect_device: bool = True,
               watch_seconds: float = 2.0) -> SentituneApp:
    """The app factory: tests hand it a temporary runs folder and a tiny-model config."""
    return SentituneApp(runs_root=runs_root, config=config, open_run=open_run, detect_device=detect_device,
                        watch_seconds=watch_seconds)


def run_app(config_path: str | None = None, run: str | None = None, runs_root: str = "runs") -> int:
    """Entry point for `sentitune` with no subcommand."""
    import sys

    from core.network import check_hub_endpoint
    from core.runs.store import resolve_run

    try:
        check_hub_endpoint()  # the app's workers import huggingface_hub, which parses it on import
        # Without --config, the settings last started with this runs folder (a long model path is not retyped).
        config = load_toml(config_path) if config_path else last_config(runs_root)
        open_run = resolve_run(run, runs_root) if run else None
    except CoreError as exc:
        print(printable(f"sentitune: {exc}"), file=sys.stderr)
        return 2
    create_app(runs_root, config, open_run).run()
    return 0
