"""Checks made before a run loads its data and model: the model exists and takes max_length, the runs
folder can be written and has room, and (before detaching) the data file reads."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from core.config import TrainConfig
from core.errors import ConfigError, ModelError, RunError
from core.format import short_name

MIN_FREE_BYTES = 64 * 2**20  # below this nothing useful can be written, whatever the model
WEIGHT_COPIES = 4  # the saved model plus one checkpoint's weights and AdamW's two moment buffers
SNIFF_BYTES = 50 * 2**20  # data files up to this size are read in full before a run detaches


def model_config(model: str):
    """The model's transformers config (config.json only, no weights), or ModelError saying why not."""
    from transformers import AutoConfig

    from core.training.model import _from_pretrained

    path = Path(model).expanduser()
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelError(f"model folder {model} has no config.json; give the folder a model was saved to")
    return _from_pretrained(AutoConfig.from_pretrained, model, "model config")


def check_max_length(config: TrainConfig, model_cfg) -> None:
    """ConfigError when max_length is more than the model's position embeddings take."""
    from core.training.model import position_limit

    limit = position_limit(model_cfg)
    if limit is not None and config.max_length > limit:
        raise ConfigError({"max_length": (
            f"{config.max_length} is more than {short_name(config.model)} takes ({limit} tokens); "
            f"use at most {limit}"
        )})


def check_processes(config: TrainConfig) -> None:
    """ConfigError for several processes where they cannot share the work: Apple MPS has no process group, and
    on CUDA each process needs a GPU of its own (two on one GPU fail in NCCL with "duplicate GPU")."""
    from core.training.distributed import machines
    from core.training.model import resolve_device

    if config.num_processes <= 1:
        return
    device = resolve_device(config.device)
    if device == "mps":
        raise ConfigError({"num_processes": "several processes need CUDA GPUs (or the CPU); on Apple MPS use 1"})
    count, _ = machines(config)
    if device == "cuda" and count == 1:
        import torch

        visible = torch.cuda.device_count()
        if config.num_processes > visible:
            raise ConfigError({"num_processes": (
                f"{config.num_processes} processes need {config.num_processes} GPUs and {visible} "
                f"{'is' if visible == 1 else 'are'} visible; use num_processes {visible} or fewer "
                "(CUDA_VISIBLE_DEVICES says which GPUs are visible)")})


def weights_bytes(model: str) -> int:
    """Size of a local model folder's weights (0 when unknown, e.g. a hub id)."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())


def disk_message(exc: OSError, where: Path) -> str:
    """One line for a failed write under `where`: a full disk, a read-only one, or another error."""
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {where} is full; free some space or choose another --output-dir"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write to {where} ({exc.strerror}); choose a folder you can write to with --output-dir"
    return f"cannot write to {where}: {exc.strerror or exc}; choose another --output-dir"


def check_output(root: str | Path, model: str) -> None:
    """RunError unless `root` can hold a new run folder: creatable, writable, and with room for the model.

    Folders made to find out are removed again: bad input leaves nothing behind.
    """
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise RunError(f"the runs folder {root} is a file; choose a folder with --output-dir")
    made: list[Path] = []
    try:
        missing = [p for p in (root, *root.parents) if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=root)
        os.close(fd)
        os.unlink(probe)
        free = shutil.disk_usage(root).free
    except OSError as exc:
        raise RunError(disk_message(exc, root)) from None
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
    need = max(WEIGHT_COPIES * weights_bytes(model), MIN_FREE_BYTES)
    if free < need:
        raise RunError(
            f"only {_size(free)} free on the disk holding {root}; a run of {short_name(model)} needs about "
            f"{_size(need)} (model and checkpoints); free some space or choose another --output-dir"
        )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


TRACKER_PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}


def check_tracker(config: TrainConfig) -> None:
    """ConfigError when the tracker asked for (report_to) is not installed, with the pip command that installs it."""
    import importlib.util

    package = TRACKER_PACKAGES.get(config.report_to)
    if package is not None and importlib.util.find_spec(package) is None:
        extra = f"pip install 'sentitune[{package}]'" if package != "wandb" else "pip install wandb"
        raise ConfigError({"report_to": f"{package} is not installed: {extra}, or set report_to to none"})


def preflight(config: TrainConfig, runs_root: str | Path | None) -> None:
    """Everything that can be checked without loading data or weights; CoreError for the first problem."""
    from core.data.sources import check_local_source

    check_local_source(config.dataset)
    check_processes(config)
    check_tracker(config)
    check_max_length(config, model_config(config.model))
    if runs_root is not None:
        check_output(runs_root, config.model)


def check_data(config: TrainConfig) -> None:
    """Read a local data file the way a run will (files up to SNIFF_BYTES), so a detached run cannot fail on it."""
    from core.data.clean import load_clean
    from core.data.sources import is_local_source

    if not is_local_source(config.dataset):
        return
    path = Path(config.dataset).expanduser()
    if path.is_file() and path.stat().st_size > SNIFF_BYTES:
        return  # reading it here would delay the return of --detach; the run reports problems itself
    load_clean(config)

