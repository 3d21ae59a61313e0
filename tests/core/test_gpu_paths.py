"""GPU code paths that cannot run here, checked with patched device queries."""

from types import SimpleNamespace

import pytest
import torch

from core.config import TrainConfig
from core.errors import ConfigError
from core.training.model import choose_precision, device_description


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 0), "fp16"),
                                                  ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_uses_bf16_only_where_the_gpu_computes_it(monkeypatch, capability, expected):
    """A T4 (7.5), V100 (7.0) or P100 (6.0) reports bf16 as supported but only emulates it."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert choose_precision("auto", "cuda") == expected


def test_one_process_trains_on_one_gpu_and_says_which(monkeypatch):
    from core.training.trainer import pin_one_gpu

    args = SimpleNamespace(device=torch.device("cuda", 0), n_gpu=4, _n_gpu=4)
    pin_one_gpu(args)
    assert args._n_gpu == 1
    cpu_args = SimpleNamespace(device=torch.device("cpu"), n_gpu=0, _n_gpu=0)
    pin_one_gpu(cpu_args)
    assert cpu_args._n_gpu == 0
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert device_description("cuda") == "CUDA Tesla T4 (GPU 0 of 4; CUDA_VISIBLE_DEVICES picks another)"
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert device_description("cuda") == "CUDA Tesla T4"


def test_several_processes_are_refused_on_apple_mps(monkeypatch):
    from core.training.preflight import check_processes

    monkeypatch.setattr("core.training.model.resolve_device", lambda requested="auto": "mps")
    with pytest.raises(ConfigError, match="on Apple MPS use 1"):
        check_processes(TrainConfig(num_processes=2))
    check_processes(TrainConfig(num_processes=1))


def test_the_memory_figure_is_this_process_share(monkeypatch):
    from core.training.trainer import gpu_memory

    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 3 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=16 * 2**30))
    assert gpu_memory() == (3 * 2**30, 16 * 2**30)
