"""Starting a sweep's workers: here, in the background, or several at once, each on its own GPU.

On a GPU box a sweep gets one worker per GPU by default, each pinned to its GPU with CUDA_VISIBLE_DEVICES (the
GPUs this process may use, when CUDA_VISIBLE_DEVICES already limits them). On a CPU the cores are divided
between the workers (OMP_NUM_THREADS), so two workers on two cores train one thread each rather than fighting
over both. A background worker inherits its lock from the process that starts it, so the sweep never reads as
stopped between the start and the worker running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.errors import ConfigError, RunError
from core.experiments.record import check_resumable, live_workers, read_sweep, stop_file, worker_lock
from core.experiments.worker import LOCK_FD_VARIABLE, WORKER_VARIABLE, clear_stop, worker_name
from core.runs.lock import RunLock

MAX_WORKERS = 64


def visible_gpus() -> list[str]:
    """The GPUs this process may use, freest first, as CUDA_VISIBLE_DEVICES names them (UUIDs when NVML sees
    them: CUDA's and NVML's numbering can differ, a UUID is the same GPU for both); [] without any."""
    from core.training.gpus import list_gpus

    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    allowed = None if given is None else [g.strip() for g in given.split(",") if g.strip() and g.strip() != "-1"]
    gpus = list_gpus() or []
    if allowed is not None:
        by_name = {name: g for g in gpus for name in (str(g.index), g.uuid)}
        if not all(a in by_name for a in allowed):
            return allowed  # named in a way NVML does not know (MIG slices...): as given
        gpus = [by_name[a] for a in allowed]
    return [g.uuid or str(g.index) for g in sorted(gpus, key=lambda g: -g.free)]


def default_workers() -> int:
    """One worker per GPU; one on a machine without a GPU."""
    return max(1, len(visible_gpus()))


def worker_environments(workers: int, device: str = "auto") -> list[dict[str, str]]:
    """What each of `workers` workers adds to its environment: its GPU, or its share of the CPU cores."""
    from core.training.model import cpu_threads

    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError({"workers": f"--workers takes 1 to {MAX_WORKERS}, not {workers}"})
    if workers == 1:
        return [{}]  # one worker: its runs choose the GPU with the most free memory, as any run does
    gpus = [] if device == "cpu" else visible_gpus()
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} for i in range(workers)]
    share = str(max(1, cpu_threads() // workers))
    return [{"OMP_NUM_THREADS": share, "MKL_NUM_THREADS": share} for _ in range(workers)]


def apply_here(environment: dict[str, str]) -> None:
    """Give this process a worker's environment (before it first uses CUDA, or to set its threads now)."""
    os.environ.update(environment)
    if "OMP_NUM_THREADS" in environment and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(environment["OMP_NUM_THREADS"]))


def log_path(path: Path, index: int) -> Path:
    """The log of a background worker: `sweep-X.log` for the first, `sweep-X.worker2.log`... for the others."""
    return path.with_suffix(".log") if index == 0 else path.with_name(f"{path.stem}.worker{index + 1}.log")


def spawn_workers(path: Path, environments: list[dict[str, str]], first_index: int = 0) -> list[subprocess.Popen]:
    """Start one background worker per environment (each in its own session: it survives the SSH session
    ending), each holding a lock taken here first. RunError when one cannot be started (those started go on)."""
    path = Path(path)
    try:
        worker_lock(path, "x").parent.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot start the sweep's workers ({exc.strerror or exc} in {path.parent}); check the runs "
                       "folder is writable") from None
    started = []
    for index, environment in enumerate(environments, start=first_index):
        name = worker_name()
        lock = RunLock(path=worker_lock(path, name)).acquire()
        log = log_path(path, index)
        try:
            with open(log, "ab") as out:
                started.append(subprocess.Popen(
                    [sys.executable, "-m", "core.cli", "sweep", "--join", str(path), "--output-dir", str(path.parent)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    cwd=os.getcwd(), pass_fds=(lock.fd,),
                    env={**os.environ, **environment, "PYTHONUNBUFFERED": "1", LOCK_FD_VARIABLE: str(lock.fd),
                         WORKER_VARIABLE: name},
                ))
        except OSError as exc:
            lock.release()
            raise RunError(f"cannot start the sweep in the background ({log}: {exc.strerror or exc}); check the "
                           "runs folder is writable, or run it without --detach") from None
        lock.hand_over()  # the child holds it now; closing ours does not unlock it
    return started


def start_sweep_detached(path: str | Path, workers: int = 1, join: bool = False) -> Path:
    """Run the sweep in `workers` background processes; returns the first one's log. RunError when it is
    already running (unless joining), or a process cannot be started (the sweep is left as it was)."""
    path = Path(path)
    environments = worker_environments(workers, read_sweep(path)["base"].get("device", "auto"))
    if join:
        check_joinable(path)
    else:
        check_resumable(path)
    if not live_workers(path):
        clear_stop(path)  # here, not in the child: a stop asked while it starts must reach it
    spawn_workers(path, environments, first_index=len(live_workers(path)) if join else 0)
    return log_path(path, 0)


def check_joinable(path: Path) -> dict:
    """The record of a sweep another worker may join: points left, and not stopping."""
    record = read_sweep(path)
    if not record.get("study"):
        raise RunError(f"sweep {path.stem} was recorded by an earlier version of sentitune: no worker can join it; "
                       "start a new sweep")
    if record["workers"] and stop_file(path).exists():
        raise RunError(f"sweep {path.stem} is stopping; resume it once it has: sentitune sweep --resume {path.stem}")
    if all(p.get("status") in ("finished", "failed", "pruned") for p in record["points"]):
        raise RunError(f"sweep {path.stem} has no point left for another worker; see it with sentitune sweep --show "
                       f"{path.stem}")
    return record


def wait_for(children: list[subprocess.Popen], say=None) -> None:
    """Wait for background workers started by this process (a foreground sweep of several workers)."""
    left = [c for c in children if c.poll() is None]
    if left and say is not None:
        say(f"waiting for the sweep's other worker{'s' if len(left) > 1 else ''} to end "
            f"{'their' if len(left) > 1 else 'its'} point (their logs are beside the sweep)")
    while any(c.poll() is None for c in children):
        time.sleep(0.5)


