"""A shared GPU box: which GPU has room for a run, who holds the memory of the others, and waiting for room.

Read through NVIDIA's management library (nvidia-ml-py): what every GPU holds and for which processes, without
starting CUDA in this process (a context takes memory, and picks a GPU before this module could). Where the
library or its driver is missing, nothing here decides anything: the run takes the first visible GPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.config import TrainConfig
from core.errors import RunError
from core.format import short_name

GIB = 2**30
CUDA_CONTEXT_BYTES = 600 * 2**20
"""What a process's CUDA context and the kernels' workspace take before any tensor (measured: 0.4-0.6 GB)."""
MARGIN = 1.2
"""The estimate is rough (activations depend on the model's code): ask for a fifth more."""
WAIT_POLL_SECONDS = 15.0


class GpuBusyError(RunError):
    """No GPU has the memory a run needs (and it was not asked to wait): a refusal, before anything is trained."""

    title = "No GPU has room"


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    user: str
    command: str
    used: int  # bytes of this GPU's memory


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    total: int
    free: int
    processes: tuple[GpuProcess, ...] = ()

    def holders(self, exclude: int | None = None) -> str:
        """'alice: python 14.2 GB, bob: jupyter 3.1 GB' (the largest first), or 'no other process'."""
        shown = sorted((p for p in self.processes if p.pid != exclude), key=lambda p: -p.used)
        if not shown:
            return "no other process"
        return ", ".join(f"{p.user}: {p.command} {p.used / GIB:.1f} GB" for p in shown[:3]) + (
            f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def list_gpus() -> list[Gpu] | None:
    """Every GPU the driver sees, with its free memory and processes; None without NVML (no package or driver)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                running = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except pynvml.NVMLError:
                running = []
            processes = tuple(GpuProcess(p.pid, _user(p.pid), _command(p.pid), int(p.usedGpuMemory or 0))
                              for p in running)
            gpus.append(Gpu(index, _text(pynvml.nvmlDeviceGetUUID(handle)), _text(pynvml.nvmlDeviceGetName(handle)),
                            int(memory.total), int(memory.free), processes))
        return gpus
    except pynvml.NVMLError:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _user(pid: int) -> str:
    """The login of the user who runs `pid` ('?' when it cannot be told: another container, no /proc)."""
    import pwd

    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            uid = next(int(line.split()[1]) for line in fh if line.startswith("Uid:"))
        return pwd.getpwuid(uid).pw_name
    except (OSError, StopIteration, KeyError, ValueError, IndexError):
        return "?"


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip() or "?"
    except OSError:
        return "?"


# ------------------------------------------------------------------ how much a run needs


def parameter_count(model_config) -> int:
    """Parameters of an encoder classifier from its config (BERT, DistilBERT, RoBERTa, MiniLM shapes): embeddings,
    each layer's attention and feed-forward, the head. Within a few percent of the real count for these."""
    hidden = _first(model_config, "hidden_size", "dim", "d_model") or 768
    layers = _first(model_config, "num_hidden_layers", "n_layers", "num_layers") or 12
    inner = _first(model_config, "intermediate_size", "hidden_dim", "ffn_dim") or 4 * hidden
    vocab = _first(model_config, "vocab_size") or 30522
    positions = _first(model_config, "max_position_embeddings") or 512
    per_layer = 4 * hidden * hidden + 2 * hidden * inner + 9 * hidden  # q, k, v, out; two linears; biases, norms
    return vocab * hidden + positions * hidden + layers * per_layer + hidden * hidden + 2 * hidden


def _first(config, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def estimate_bytes(config: TrainConfig, model_config, precision: str) -> int:
    """GPU memory a run of `config` needs: float32 weights, gradients and AdamW's two moments (16 bytes per
    parameter), the activations one batch keeps for the backward pass, the CUDA context; with a margin.

    Activations per layer follow Korthikanti et al. (2022): about s*b*h*(34 + 5*a*s/h) bytes in 16-bit
    precision, twice that in float32, for s tokens, b reviews, h hidden units and a attention heads.
    """
    params = parameter_count(model_config)
    hidden = _first(model_config, "hidden_size", "dim", "d_model") or 768
    layers = _first(model_config, "num_hidden_layers", "n_layers", "num_layers") or 12
    heads = _first(model_config, "num_attention_heads", "n_heads") or 12
    tokens, batch = config.max_length, config.batch_size
    width = 1 if precision in ("fp16", "bf16") else 2
    activations = width * layers * tokens * batch * hidden * (34 + 5 * heads * tokens / hidden)
    return int(MARGIN * (16 * params + activations + CUDA_CONTEXT_BYTES))


# ------------------------------------------------------------------ choosing, refusing, waiting


def choose(gpus: list[Gpu], need: int) -> Gpu | None:
    """The GPU with the most free memory, if it has `need` bytes free."""
    best = max(gpus, key=lambda g: g.free, default=None)
    return best if best is not None and best.free >= need else None


def shortage(gpus: list[Gpu], need: int, model: str) -> str:
    """One line: what the run needs, what each GPU has free, and who holds the rest."""
    each = "; ".join(f"GPU {g.index} ({g.name}) has {g.free / GIB:.1f} of {g.total / GIB:.0f} GB free, held by "
                     f"{g.holders()}" for g in gpus)
    return (f"{short_name(model)} at this batch size and max_length needs about {need / GIB:.1f} GB of GPU memory "
            f"and no GPU has it free: {each}. Wait for one (--wait-for-gpu, or 'wait_for_gpu' on F2), lower "
            "batch_size or max_length, or train on the CPU (device = cpu)")


def place_run(config: TrainConfig, model_config, precision: str, say: Callable[[str], None],
              stopped: Callable[[], bool] = lambda: False, sleep: Callable[[float], None] | None = None,
              gpus: Callable[[], list[Gpu] | None] | None = None) -> Gpu | None:
    """Pick the GPU this single-process run trains on, before CUDA starts in this process: the one with the most
    free memory, once one has what the run needs. None when the choice is not this module's to make (no NVML,
    CUDA_VISIBLE_DEVICES set by the user, CUDA already started here): the first visible GPU is then used.

    Without room: GpuBusyError naming who holds the memory, or with `config.wait_for_gpu` a wait in line,
    said through `say` at each look, until a GPU has room (`stopped()` ends it: the caller stops the run).
    """
    import torch

    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None or torch.cuda.is_initialized():
        return None
    sleep, gpus = sleep or time.sleep, gpus or list_gpus
    found = gpus()
    if not found:
        return None
    need = estimate_bytes(config, model_config, precision)
    while True:
        gpu = choose(found, need)
        if gpu is not None:
            # By UUID: CUDA numbers GPUs fastest first, NVML by bus; the UUID is the same GPU for both.
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu.uuid
            say(f"GPU {gpu.index} ({gpu.name}): {gpu.free / GIB:.1f} GB free, the run needs about "
                f"{need / GIB:.1f} GB; other processes on it: {gpu.holders()}")
            return gpu
        line = shortage(found, need, config.model)
        if not config.wait_for_gpu:
            raise GpuBusyError(line)
        say(f"waiting for a GPU with {need / GIB:.1f} GB free (looking every {WAIT_POLL_SECONDS:.0f} s): "
            + "; ".join(f"GPU {g.index} has {g.free / GIB:.1f} GB free ({g.holders()})" for g in found))
        waited = 0.0
        while waited < WAIT_POLL_SECONDS:
            if stopped():
                return None
            sleep(1.0)
            waited += 1.0
        found = gpus() or found


def oom_blame(exclude_pid: int | None = None) -> str | None:
    """When other processes hold much of this run's GPU, who they are (the batch size may not be to blame)."""
    import torch

    found = list_gpus()
    if not found:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    gpu = next((g for g in found if g.uuid == visible or str(g.index) == visible), None)
    if gpu is None:
        gpu = found[torch.cuda.current_device()] if torch.cuda.is_initialized() and found else found[0]
    others = sum(p.used for p in gpu.processes if p.pid != (exclude_pid or os.getpid()))
    if others < 0.25 * gpu.total:
        return None
    return (f"other processes hold {others / GIB:.1f} of GPU {gpu.index}'s {gpu.total / GIB:.0f} GB "
            f"({gpu.holders(exclude=exclude_pid or os.getpid())})")


def status_line(gpus: list[Gpu] | None, exclude_pid: int | None = None) -> str | None:
    """'GPU 0: 30.1 GB free · 2 other processes', for the header (the GPU this process would use)."""
    if not gpus:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    gpu = next((g for g in gpus if g.uuid == visible or str(g.index) == visible), gpus[0])
    others = [p for p in gpu.processes if p.pid != (exclude_pid or os.getpid())]
    count = f"{len(others)} other process{'es' if len(others) != 1 else ''}"
    return f"GPU {gpu.index}: {gpu.free / GIB:.1f} GB free · {count}"
