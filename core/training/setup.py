"""What a run is started with (one frozen RunSetup, new or resumed), and loading what it trains."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import __version__
from core.config import TrainConfig
from core.errors import DatasetError
from core.events import Event, EventLog, StageChanged
from core.training.logs import RunLogHandler, log
from core.training.phases import Phases
from core.training.stopping import StopSignal


class Emitter:
    """Hands events to the caller and appends them to events.jsonl once the run folder exists."""

    def __init__(self, on_event: Callable[[Event], None] | None, enabled: bool = True):
        self.on_event = on_event
        self.enabled = enabled  # False on ranks other than 0: one coherent events.jsonl per run
        self.log: EventLog | None = None
        self._pending: list[Event] = []

    def open(self, path: Path) -> None:
        if not self.enabled or self.log is not None:
            return
        self.log = EventLog(path)
        for event in self._pending:
            self.log.write(event)
        self._pending.clear()

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if self.log is None:
            self._pending.append(event)
        else:
            self.log.write(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a broken listener must not break training
                log.exception("event listener failed")

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


@dataclass(frozen=True)
class RunSetup:
    """A run as it is started: its settings, its folder (or where one will be made) and its channels."""

    config: TrainConfig
    runs_root: Path
    run_dir: Path | None
    """Made beforehand (a detached start, a resume, an out-of-memory retry); None: a new folder under runs_root."""
    checkpoint: Path | None
    """Resume from this checkpoint; None for a new run."""
    emit: Emitter
    stop: StopSignal
    log: RunLogHandler
    owner: str = "app"
    """Who trains it (core.runs.control.Owner), recorded in status.json: how a stop reaches it."""
    phases: Phases = field(default_factory=Phases)
    """The run's stopwatch (metrics.json `phases`), started as the run is."""
    on_wait: Callable[[str], None] | None = None
    """Told each time the run looks for a GPU with room and waits on (wait_for_gpu): the line to show."""

    @property
    def resuming(self) -> bool:
        return self.checkpoint is not None


@dataclass(frozen=True)
class Loaded:
    """What a run trains, once loaded: its split data, tokenizer and model, and where and how."""

    data: Any  # core.data.clean.PreparedData
    tokenizer: Any
    model: Any
    device: str
    precision: str
    device_desc: str


def load(setup: RunSetup) -> Loaded:
    """Load and split the data, then the tokenizer and model (from the checkpoint when resuming).

    A stop request is honoured between the steps and while a Hub download reports progress.
    """
    import transformers

    from core.data.clean import prepare
    from core.training.model import choose_precision, device_description, load_model, load_tokenizer, resolve_device

    config, emit, stop = setup.config, setup.emit, setup.stop
    stop.check()
    emit(StageChanged("data", f"loading {config.dataset}"))

    def reading(detail: str) -> None:  # a download in progress: say how far, and stop there if asked
        stop.check()
        emit(StageChanged("data", detail))

    with setup.phases("data"):
        data = prepare(config, progress=reading)
        if setup.resuming:
            check_same_data(setup.run_dir, data)
            check_checkpoint(setup.run_dir, setup.checkpoint)
    for note in data.notes + ["; ".join(data.cleaning.lines())]:
        emit(StageChanged("data", note))
    stop.check()
    device = resolve_device(config.device)
    precision = choose_precision(config.precision, device)
    source = str(setup.checkpoint) if setup.resuming else config.model
    if device == "cuda":
        with setup.phases("gpu"):
            _place(setup, source, precision)
    emit(StageChanged("model", f"loading {source}"))
    saved_tokenizer = setup.resuming and (setup.checkpoint / "tokenizer_config.json").exists()
    with setup.phases("model"):
        tokenizer = load_tokenizer(source if saved_tokenizer else config.model)
        transformers.set_seed(config.seed)  # the same classifier head for the same seed
        model = load_model(source, data.label_names)
    stop.check()
    return Loaded(data, tokenizer, model, device, precision, device_description(device))


def _place(setup: RunSetup, source: str, precision: str) -> None:
    """Pick the GPU with room for this run (a shared box), or wait for one; several processes have theirs."""
    from core.training.distributed import world_size
    from core.training.gpus import place_run
    from core.training.preflight import model_config

    if world_size() > 1:
        return

    def say(line: str) -> None:
        waiting = line.startswith("waiting")
        setup.emit(StageChanged("wait" if waiting else "model", line))
        if waiting and setup.on_wait is not None:
            setup.on_wait(line)

    place_run(setup.config, model_config(source), precision, say, stopped=setup.stop.requested)
    setup.stop.check()  # a stop while it waited


def config_record(setup: RunSetup, loaded: Loaded, processes: int) -> dict[str, Any]:
    """config.json of a new run: everything needed to rebuild, compare or resume it."""
    data = loaded.data
    return {
        "config": setup.config.to_dict(),
        "created": time.time(),
        "device": loaded.device_desc,
        "precision": loaded.precision,
        "processes": processes,
        "versions": library_versions(),
        "label_names": data.label_names,
        "text_columns": data.text_columns,
        "label_column": data.label_column,
        "source": data.source,
        "notes": data.notes,
        "cleaning": asdict(data.cleaning),
        "samples": {name: len(frame) for name, frame in data.splits.items()},
        "data_fingerprint": data.fingerprint(),  # resuming checks the data still gives this split
    }


def library_versions() -> dict[str, str]:
    import datasets
    import torch
    import transformers

    return {
        "sentitune": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
    }


def check_resumable(run_dir: str | Path) -> None:
    """CoreError now, rather than in a background process, when a run's data no longer gives its split or its
    last checkpoint is damaged."""
    from core.data.clean import prepare
    from core.runs.checkpoints import last_complete_checkpoint
    from core.runs.store import Run

    run = Run(run_dir)
    check_same_data(run.path, prepare(run.train_config()))
    check_checkpoint(run.path, last_complete_checkpoint(run.path))


CHECKPOINT_STATES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth", "rng_state_*.pth")
"""A checkpoint's pickled states, which the Trainer unpickles (tensors and plain values only) when it resumes."""


def check_checkpoint(run_dir: Path, checkpoint: Path) -> None:
    """RunError, before the run is touched, when a state file of `checkpoint` does not unpickle as tensors and
    plain values: damaged, or written by something else. torch's own error advises unpickling it with
    weights_only=False, which runs whatever code the file holds: that advice is never passed on."""
    import torch
    from transformers.trainer_pt_utils import safe_globals

    from core.errors import RunError
    from core.runs.checkpoints import checkpoint_step, is_complete

    for path in sorted(p for pattern in CHECKPOINT_STATES for p in checkpoint.glob(pattern)):
        try:
            with safe_globals():  # the numpy RNG state's types, as the Trainer allows
                try:
                    torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # the tensors stay on disk
                except RuntimeError as exc:
                    if "mmap" not in str(exc):
                        raise
                    torch.load(path, map_location="cpu", weights_only=True)  # an older format: read whole
        except Exception:
            earlier = [p for p in checkpoint.parent.glob("checkpoint-*")
                       if p.name.rsplit("-", 1)[-1].isdigit() and checkpoint_step(p) < checkpoint_step(checkpoint)
                       and is_complete(p)]
            way = (f"move {checkpoint.name} out of {run_dir.name}/checkpoints to resume from the one before it, or "
                   "start a new run" if earlier else "start a new run (it is the only checkpoint)")
            raise RunError(f"{path.name} in {checkpoint.name} of run {run_dir.name} is damaged or was not written by "
                           f"sentitune; nothing was loaded from it: {way}") from None


def check_same_data(run_dir: Path, data) -> None:
    """DatasetError when the data a run is resumed on no longer gives the split it started with."""
    from core.runs.store import Run

    record = Run(run_dir).config_record
    names = record.get("label_names")
    if isinstance(names, list) and names != data.label_names:
        raise DatasetError(
            f"the data of run {run_dir.name} changed since it started: its labels were {', '.join(map(str, names))} "
            f"and are now {', '.join(data.label_names)}; restore the data or start a new run"
        )
    fingerprint = record.get("data_fingerprint")
    if fingerprint and fingerprint != data.fingerprint():
        raise DatasetError(
            f"the data of run {run_dir.name} changed since it started ({data.source} no longer gives the same "
            "train/validation/test split); restore the file or start a new run"
        )
