"""The prediction console's model choice: a list of trained runs, a folder path box, and a status line.

Models load in a thread; the few most recently used stay loaded, so switching back to one is instant,
and older ones are dropped so their memory can be freed.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Select, Static
from textual.worker import Worker, WorkerState

from core.format import printable
from core.runs import layout
from tui.safe import SafeInput, notify_error, plain

NO_MODEL = "No trained model yet: train one (F2) or type a model folder path above"
NOT_LOADED = "No model loaded: pick a run above, or press ctrl+l to load the newest"
CACHE_SIZE = 2  # loaded models kept: the current one and the one before it (each can take GBs)


def model_key(path: str | Path) -> str:
    """The cache key of a run or model folder: its absolute path."""
    return str(Path(path).expanduser().resolve())


def model_name(predictor: Any) -> str:
    """A short name for a loaded model: its run folder's name, or its own folder's; and ONNX for an export."""
    folder = predictor.model_dir
    name = folder.parent.name if folder.name in (layout.MODEL, layout.ONNX) else folder.name
    return f"{predictor.backend} · {name}" if getattr(predictor, "onnx", False) else name


class ModelPicker(Vertical):
    """Pick the model to query: a run with a saved model (default the latest) or a typed folder path."""

    DEFAULT_CSS = """
    ModelPicker { height: auto; }
    ModelPicker Horizontal { height: 3; }
    ModelPicker Select { width: 1fr; }
    ModelPicker Select SelectCurrent #label { text-wrap: nowrap; text-overflow: ellipsis; }
    ModelPicker Input { width: 24; }
    ModelPicker #model-status { height: 1; padding: 0 1; color: $text-muted; }
    ModelPicker #model-status.-none { color: $warning; }
    """

    class Changed(Message):
        """The current model became ready, failed to load (`failed`), or there is none: queued reviews can go."""

        def __init__(self, failed: bool = False) -> None:
            super().__init__()
            self.failed = failed

    def __init__(self, runs_root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs_root = runs_root
        self._cache: OrderedDict[str, Any] = OrderedDict()  # model key -> core.predict.Predictor, least recent first
        self._want: str | None = None  # the model the user picked
        self._good: str | None = None  # the last model that loaded, to fall back to
        self._before: str | None = None  # the choice before the current one (loaded or loading), to fall back to
        self._failed: str | None = None  # the name of the last model that could not be loaded, for the status line
        self._loading: dict[Worker, str] = {}
        self._run_keys: set[str] = set()
        self.runs_known = False
        self.by_hand = False  # the user picked a model in this session: newer runs are offered, not switched to
        self._latest: str | None = None  # the newest run with a model, as last listed
        self.newer: Path | None = None  # a run newer than the hand-picked model, one key (ctrl+l) away
        self._listed = False

    @property
    def predictor(self) -> Any:
        """The loaded core.predict.Predictor of the picked model, or None while there is none (or it loads)."""
        return self._cache.get(self._want) if self._want else None

    @property
    def no_model(self) -> bool:
        """True when no model is picked or loading and none can be picked automatically."""
        return self._want is None and self.runs_known

    @property
    def missing(self) -> str:
        """What to tell the user while there is no model: none trained yet, or none loaded (a load failed)."""
        return NOT_LOADED if self._latest is not None else NO_MODEL

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Select([], prompt="Pick a trained run")
            yield SafeInput(placeholder="or a model folder path")
        yield Static("looking for trained runs…", id="model-status")

    def on_mount(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """List the runs again (a run finished); picks the latest if nothing is picked yet."""
        self._list_runs(self.runs_root)

    @work(thread=True, exit_on_error=False, exclusive=True, group="model-runs")
    def _list_runs(self, root: Path) -> tuple[list[Any], Any, dict[Path, str]]:
        from core.predict import export_is_stale, export_kind
        from core.runs.store import latest_finished, list_runs

        runs = [r for r in list_runs(root) if r.has_model]
        return runs, latest_finished(root), {r.path: export_kind(r.path / layout.ONNX) + (
            " (older than the model)" if export_is_stale(r.path / layout.ONNX) else "")
            for r in runs if (r.path / layout.ONNX / layout.ONNX_MODEL).is_file()}

    def _runs_listed(self, runs: list[Any], latest: Any, exports: dict[Path, str]) -> None:
        options = []
        for r in runs:
            scores = f"test acc {r.test_accuracy:.1%}" if r.test_accuracy is not None else r.status
            options.append((Text(printable(f"{r.name} · {scores}")), model_key(r.path)))
            if r.path in exports:  # its ONNX export, right below it, the kind first (long names are cut)
                options.append((Text(printable(f"{exports[r.path]} · {r.name}")), model_key(r.path / layout.ONNX)))
        self._run_keys, self.runs_known = {key for _, key in options}, True
        select = self.query_one(Select)
        with self.prevent(Select.Changed):
            select.set_options(options)
        latest_key = model_key(latest.path) if latest is not None else None
        # A run that finished since the last listing (the first listing only picks a default).
        arrived = self._listed and latest_key is not None and latest_key != self._latest
        self._latest, self._listed = latest_key, True
        if latest is not None and (self._want is None or arrived and not self.by_hand):
            self.use(latest.path)  # the first model, or a run that just finished
        else:
            if arrived and latest_key != self._want:
                self.newer = latest.path
            self._sync()

    def use(self, path: str | Path, by_hand: bool = False) -> None:
        """Make the run or model folder at `path` the current model, loading it in a thread unless it is cached.

        `by_hand`: the user chose it (a newer run is then offered, not switched to).
        """
        self.by_hand = self.by_hand or by_hand
        key = model_key(path)
        if self._want is not None and key != self._want:
            self._before = self._want
        self._want, self._failed = key, None
        if key in self._cache:
            self._cache.move_to_end(key)
            self._good = key
        elif key not in self._loading.values():
            self._loading[self._load(key)] = key
        self._sync()

    def use_newest(self) -> bool:
        """Use the newest run's model: a newer run than the current one, or the newest again when none is
        loaded or loading (its load failed). False when it is already the current model."""
        if self.newer is not None:
            self.use(self.newer)
        elif self._latest is not None and self._want is None:
            self.use(self._latest)
        else:
            return False
        return True

    def _fallback(self, failed: str) -> str | None:
        """The model to keep when `failed` could not be loaded: the one picked before it, else the last one that
        loaded, else one still loading; only one that is loaded or loading."""
        loading = list(self._loading.values())
        for key in (self._before, self._good, *reversed(loading)):
            if key is not None and key != failed and (key in self._cache or key in loading):
                return key
        return None

    @work(thread=True, exit_on_error=False, group="model-load")
    def _load(self, key: str) -> Any:
        from core.predict import Predictor

        return Predictor(key)

    def _sync(self, failed: bool = False) -> None:
        """Show the current choice in the list and the status line, and tell the screen."""
        select = self.query_one(Select)
        with self.prevent(Select.Changed):  # only the user's picks come back as Changed
            if self._want in self._run_keys:
                select.value = self._want
            elif not select.is_blank():
                select.clear()
        status, predictor = self.query_one("#model-status", Static), self.predictor
        status.set_class(self.no_model, "-none")
        if self.newer is not None and model_key(self.newer) == self._want:
            self.newer = None
        if predictor is not None:
            newer = f" · newer run {self.newer.name}: ctrl+l uses it" if self.newer is not None else ""
            stale = " · older than its run's model: export again" if getattr(predictor, "stale", False) else ""
            line = (f"Model: {model_name(predictor)} · labels {', '.join(predictor.label_names)}"
                    f" · {predictor.device.type}{stale}{newer}")
        elif self._want is not None:
            line = f"loading model {Path(self._want).name}…"
        else:
            line = self.missing if self.runs_known else "looking for trained runs…"
        # The failure first, where a narrow line does not cut it; the message says why.
        status.update(plain(f"{self._failed} could not be loaded · {line}" if self._failed else line))
        self.post_message(self.Changed(failed))

    @on(Select.Changed)
    def _run_picked(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL and event.value != self._want:
            self.use(str(event.value), by_hand=True)

    @on(SafeInput.Submitted)
    def _path_entered(self, event: SafeInput.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.use(event.value.strip(), by_hand=True)
        else:
            self.notify("Type the path of a run folder or a model folder.", severity="warning")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if not worker.group.startswith("model-") or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        if event.state == WorkerState.ERROR:
            notify_error(self, worker.error, timeout=8)
            self.runs_known = True
            key = self._loading.pop(worker) if worker.group == "model-load" else None
            failed = key is not None and key == self._want
            if failed:
                # Keep the model there was, or the one that was loading when this one was picked.
                self._want, self._failed = self._fallback(key), Path(key).name
                if self._want in self._cache:
                    self._cache.move_to_end(self._want)
                    self._good = self._want
            self._sync(failed)
        elif worker.group == "model-runs":
            self._runs_listed(*worker.result)
        else:
            key = self._loading.pop(worker)
            self._cache[key] = worker.result
            if key == self._want:
                self._good = key
            else:
                self._cache.move_to_end(key, last=False)  # picked and left while it loaded: drop it first
            self._evict()
            self._sync()

    def _evict(self) -> None:
        """Drop the least recently used models beyond CACHE_SIZE; never the current one."""
        while len(self._cache) > CACHE_SIZE:
            oldest = next(key for key in self._cache if key != self._want)
            del self._cache[oldest]

    @property
    def cached(self) -> list[str]:
        """Keys of the loaded models, least recently used first."""
        return list(self._cache)
