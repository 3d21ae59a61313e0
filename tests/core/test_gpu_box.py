"""A shared GPU box, through a stand-in for NVIDIA's management library: the run goes to the GPU with room, says who
holds the memory when none has it, waits in line with wait_for_gpu (listed as waiting, stoppable), and an
out-of-memory error names the other processes when they hold the GPU."""

import os
import sys
import threading
import types
from types import SimpleNamespace

import pytest
import torch

from core.config import TrainConfig
from core.training import gpus

GB = 2**30


class FakeNvml(types.ModuleType):
    """pynvml as a box of `boards` shows it: [(name, total GB, free GB, [(pid, used GB)])]; `after` maps a look
    number to the boards from then on (memory freed while a run waits)."""

    class NVMLError(Exception):
        pass

    def __init__(self, boards, after=None):
        super().__init__("pynvml")
        self.boards, self.after, self.looks = boards, after or {}, 0

    def nvmlInit(self):
        self.looks += 1
        self.boards = self.after.get(self.looks, self.boards)

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.boards)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return self.boards[handle][0].encode()

    def nvmlDeviceGetUUID(self, handle):
        return f"GPU-0000-{handle}"

    def nvmlDeviceGetMemoryInfo(self, handle):
        _, total, free, _ = self.boards[handle]
        return SimpleNamespace(total=total * GB, free=free * GB, used=(total - free) * GB)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used * GB) for pid, used in self.boards[handle][3]]


@pytest.fixture()
def box(monkeypatch):
    """Install a FakeNvml (returned by the fixture's function) on a box where CUDA has not started."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)

    def install(boards, after=None):
        fake = FakeNvml(boards, after)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        return fake

    return install


def _distilbert():
    from transformers import DistilBertConfig

    return DistilBertConfig()  # distilbert-base-uncased's shape: 66M parameters


def test_the_estimate_counts_weights_optimizer_and_activations():
    config = TrainConfig(batch_size=16, max_length=256)
    assert 60e6 < gpus.parameter_count(_distilbert()) < 72e6
    need = gpus.estimate_bytes(config, _distilbert(), "fp16")
    assert 2 * GB < need < 6 * GB
    assert gpus.estimate_bytes(config.replace(batch_size=64), _distilbert(), "fp16") > 2 * need
    assert gpus.estimate_bytes(config, _distilbert(), "fp32") > need


def test_the_run_goes_to_the_gpu_with_room_and_says_who_else_is_on_it(box):
    box([("NVIDIA A100-SXM4-40GB", 40, 2, [(os.getpid(), 38)]), ("NVIDIA A100-SXM4-40GB", 40, 31, [(1, 9)])])
    said = []
    chosen = gpus.place_run(TrainConfig(), _distilbert(), "bf16", said.append)
    assert chosen.index == 1 and os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-0000-1"
    assert said[0].startswith("GPU 1 (NVIDIA A100-SXM4-40GB): 31.0 GB free, the run needs about")


def test_no_gpu_with_room_is_refused_naming_who_holds_the_memory(box):
    import getpass

    box([("Tesla T4", 16, 1, [(os.getpid(), 15)])])
    with pytest.raises(gpus.GpuBusyError) as error:
        gpus.place_run(TrainConfig(), _distilbert(), "fp16", lambda line: None)
    message = str(error.value)
    assert "needs about" in message and "GPU 0 (Tesla T4) has 1.0 of 16 GB free" in message
    assert f"{getpass.getuser()}: python" in message and "15.0 GB" in message and "--wait-for-gpu" in message
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_with_wait_for_gpu_the_run_waits_in_line_until_memory_frees(box):
    busy = [("Tesla T4", 16, 1, [(4242, 15)])]
    freed = [("Tesla T4", 16, 15, [])]
    fake = box(busy, after={4: freed})  # the fourth look finds the memory freed
    said, slept = [], []
    chosen = gpus.place_run(TrainConfig(wait_for_gpu=True), _distilbert(), "fp16", said.append, sleep=slept.append)
    assert chosen.index == 0 and fake.looks == 4
    assert [line.startswith("waiting for a GPU with") for line in said] == [True, True, True, False]
    assert "GPU 0 has 1.0 GB free" in said[0] and len(slept) == 3 * gpus.WAIT_POLL_SECONDS


def test_a_stop_ends_the_wait(box):
    box([("Tesla T4", 16, 1, [(4242, 15)])])
    stop = threading.Event()
    result = gpus.place_run(TrainConfig(wait_for_gpu=True), _distilbert(), "fp16", lambda line: stop.set(),
                            stopped=stop.is_set, sleep=lambda s: None)
    assert result is None and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_the_choice_is_the_users_when_cuda_visible_devices_is_set_or_without_nvml(box, monkeypatch):
    box([("Tesla T4", 16, 1, [])])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert gpus.place_run(TrainConfig(), _distilbert(), "fp16", lambda line: None) is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert gpus.list_gpus() is None
    assert gpus.place_run(TrainConfig(), _distilbert(), "fp16", lambda line: None) is None


def test_out_of_memory_blames_other_processes_when_they_hold_the_gpu(box):
    from core.training.oom import oom_message

    box([("Tesla T4", 16, 0.5, [(4242, 12), (os.getpid(), 3)])])
    message = oom_message(TrainConfig(batch_size=16))
    assert message.startswith("the GPU ran out of memory: other processes hold 12.0 of GPU 0's 16 GB")
    assert "wait_for_gpu" in message
    box([("Tesla T4", 16, 0.5, [(os.getpid(), 15)])])  # only this run: the batch size is what to change
    assert "set batch_size 8 and gradient_accumulation 2" in oom_message(TrainConfig(batch_size=16))
    assert gpus.status_line(gpus.list_gpus()) == "GPU 0: 0.5 GB free · 0 other processes"


def test_a_waiting_run_is_listed_as_waiting_and_stops_from_another_shell(box, tiny_config, tmp_path, monkeypatch):
    """A new run made to wait gets its folder at once: `sentitune runs` lists it as waiting, and a stop reaches it."""
    from core.runs import control
    from core.runs.store import list_runs
    from core.training.train import train

    box([("Tesla T4", 16, 0.2, [(4242, 15.8)])])
    monkeypatch.setattr("core.training.model.resolve_device", lambda requested="auto": "cuda")
    monkeypatch.setattr("core.training.model.choose_precision", lambda requested, device: "fp16")
    root = tmp_path / "runs"
    seen = []

    def look(seconds):  # the second the run waits: what another shell sees, then its stop
        if not seen:
            seen.extend((r.status, r.error) for r in list_runs(root))
            control.stop(list_runs(root)[0].path)

    monkeypatch.setattr(gpus.time, "sleep", look)
    monkeypatch.setattr(gpus, "WAIT_POLL_SECONDS", 2.0)
    result = train(tiny_config.replace(wait_for_gpu=True), root)
    assert seen[0][0] == "waiting" and "waiting for a GPU with" in seen[0][1]
    assert result.status == "stopped" and result.run_dir is not None
    assert list_runs(root)[0].status == "stopped"
