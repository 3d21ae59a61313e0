"""Multi-process training through `accelerate launch`: who this process is, and how to start N of them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.config import TrainConfig


def rank() -> int:
    """This process's global rank (0 when not launched by accelerate/torchrun)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Only rank 0 writes the run folder (events, status, metrics, model)."""
    return rank() == 0


def _initialised() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


PROCESS_GROUP_TIMEOUT_SECONDS = 3 * 3600
"""How long a rank waits at a collective for the others (the Trainer's ddp_timeout too): rank 0 tokenizing a
large dataset while the others wait at its barrier can take an hour; without it, NCCL killed them after 10 minutes."""


def init(device: str) -> None:
    """Join the process group early (the Trainer would later), so ranks can wait for each other, with the run's
    timeout (accelerate and the Trainer then reuse this group, so it is the one that counts)."""
    if world_size() > 1:
        from datetime import timedelta

        from accelerate import PartialState

        PartialState(cpu=device == "cpu", timeout=timedelta(seconds=PROCESS_GROUP_TIMEOUT_SECONDS))


def local_rank() -> int:
    """This process's rank on its own machine."""
    return int(os.environ.get("LOCAL_RANK", "0"))


@contextmanager
def main_first() -> Iterator[None]:
    """Each machine's first process runs the block first (e.g. to write a cache), then the others (which read it).

    Per machine, not per run: a machine's cache folder may not be the other machine's.
    """
    if world_size() > 1 and _initialised():
        import torch.distributed as dist

        if local_rank() != 0:
            dist.barrier()
        yield
        if local_rank() == 0:
            dist.barrier()
    else:
        yield


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for with one process)."""
    if world_size() > 1 and _initialised():
        import torch.distributed as dist

        dist.barrier()


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any, so all ranks stop at the same step."""
    return any_ranks(flag)[0]


def any_ranks(*flags: bool) -> tuple[bool, ...]:
    """Each flag, true on every rank when it is true on any: one all-reduce for several decisions."""
    if world_size() == 1 or not _initialised():
        return tuple(flags)
    import torch
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0 for flag in flags])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in value.tolist())


def check_ranks_agree(model, step: int) -> bool:
    """Log whether every rank holds the same weights (data-parallel ranks must); True when they do."""
    import torch
    import torch.distributed as dist

    from core.training.logs import log

    if world_size() == 1 or not _initialised():
        return True
    with torch.no_grad():
        total = sum(p.detach().double().sum() for p in model.parameters())
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    low, high = total.reshape(1).to(device), total.reshape(1).to(device).clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    agree = bool(torch.isclose(low, high, rtol=1e-9, atol=1e-6).item())
    if agree:
        log.info("step %d: every rank holds the same weights (checksum %.6f)", step, float(total))
    else:
        log.error("step %d: the ranks' weights differ (checksums %.6f to %.6f): they are not training one model",
                  step, float(low.item()), float(high.item()))
    return agree


def launch_command(config: TrainConfig, cli_args: list[str]) -> list[str]:
    """`accelerate launch` for `config.num_processes` processes running `python -m core.cli <cli_args>`.

    On machines without CUDA the processes train on the CPU over gloo. accelerate's `--cpu` launcher
    only starts several processes through MPI, so the torchrun-based `--multi_gpu` launcher is used and
    each process trains on the CPU (the config's device resolves to cpu there).
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config.accelerate_config:
        path = Path(config.accelerate_config).expanduser()
        cmd += ["--config_file", str(path)]
    else:
        # A free port of its own: the default (29500) may be held by another user's run on a shared box,
        # or by a run of ours that is still ending, and the processes would wait for each other forever.
        cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(free_port())]
    cmd += ["--num_processes", str(config.num_processes), "--multi_gpu"]
    return cmd + ["-m", "core.cli", *cli_args]


def free_port() -> int:
    """A TCP port nothing listens on now, for the processes of one run to meet on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machines(config: TrainConfig) -> tuple[int, int]:
    """(number of machines, this machine's rank) from the accelerate config file; (1, 0) without one."""
    if not config.accelerate_config:
        return 1, 0
    import yaml

    from core.errors import ConfigError

    path = Path(config.accelerate_config).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return int(data.get("num_machines", 1)), int(data.get("machine_rank", 0))
    except OSError as exc:
        raise ConfigError({"accelerate_config": f"cannot read {path}: {exc.strerror or exc}"}) from None
    except (yaml.YAMLError, AttributeError, TypeError, ValueError):
        raise ConfigError({"accelerate_config": f"{path} is not an accelerate config (YAML with num_machines, "
                                                "machine_rank, ...)"}) from None


def needs_launcher(config: TrainConfig) -> bool:
    """True when the run must be started as several processes."""
    return (config.num_processes > 1 or bool(config.accelerate_config)) and world_size() == 1
