"""Correct on any NVIDIA GPU, checked here with patched device queries and a CPU stand-in: float32 master weights
whatever a checkpoint's dtype, bf16 only where computed, one process per GPU, the process group's timeout, what a
run frees when it ends, explanations in bounded batches, and a CPU run that never touches CUDA."""

import gc
import weakref
from datetime import timedelta

import pytest
import torch

from core.config import TrainConfig
from core.errors import ConfigError


def test_a_model_stored_in_bf16_trains_and_is_saved_in_float32(tiny_model, tiny_config, tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForSequenceClassification

    from core.predict import Predictor
    from core.training.train import train

    stored = tmp_path / "bf16-model"
    AutoModelForSequenceClassification.from_pretrained(str(tiny_model)).to(torch.bfloat16).save_pretrained(stored)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (tiny_model / name).exists():
            (stored / name).write_bytes((tiny_model / name).read_bytes())
    result = train(tiny_config.replace(model=str(stored), epochs=1), tmp_path / "runs")
    with safe_open(str(result.run_dir / "model" / "model.safetensors"), "pt") as weights:
        assert {weights.get_slice(k).get_dtype() for k in weights.keys()} == {"F32"}
    assert next(Predictor(result.run_dir).model.parameters()).dtype == torch.float32
    assert Predictor(stored).model.dtype == torch.float32  # served in float32 too
    assert result.test["accuracy"] > 0.5


@pytest.mark.parametrize("capability, name", [((7, 5), "Tesla T4"), ((7, 0), "Tesla V100")])
def test_bf16_asked_for_on_a_gpu_that_only_emulates_it_is_refused(monkeypatch, capability, name):
    from core.training.model import choose_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    with pytest.raises(ConfigError, match=f"{name} .* only emulates bf16"):
        choose_precision("bf16", "cuda")
    assert choose_precision("fp16", "cuda") == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert choose_precision("bf16", "cuda") == "bf16"


def test_more_processes_than_visible_gpus_are_refused(monkeypatch):
    from core.training.preflight import check_processes

    monkeypatch.setattr("core.training.model.resolve_device", lambda requested="auto": "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match="3 processes need 3 GPUs and 2 are visible"):
        check_processes(TrainConfig(num_processes=3))
    check_processes(TrainConfig(num_processes=2))


def test_the_process_group_and_the_trainer_wait_as_long_as_a_large_tokenization(monkeypatch, tmp_path):
    import accelerate

    from core.training import distributed
    from core.training.trainer import training_arguments

    asked = {}
    monkeypatch.setattr(accelerate, "PartialState", lambda **kwargs: asked.update(kwargs))
    monkeypatch.setenv("WORLD_SIZE", "2")
    distributed.init("cpu")
    assert asked["timeout"] == timedelta(seconds=distributed.PROCESS_GROUP_TIMEOUT_SECONDS) >= timedelta(hours=1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    args = training_arguments(TrainConfig(), tmp_path, "cpu", "fp32")
    assert args.ddp_timeout == distributed.PROCESS_GROUP_TIMEOUT_SECONDS and args.tf32 is False


def test_a_finished_run_frees_its_model_without_the_garbage_collector(tiny_config, tmp_path, monkeypatch):
    import core.training.model as model_module
    from core.training.train import train

    models = []
    real = model_module.load_model

    def load(name, labels):
        model = real(name, labels)
        models.append(weakref.ref(model))
        return model

    monkeypatch.setattr(model_module, "load_model", load)
    gc.collect()
    gc.disable()  # only reference counts may free it
    try:
        result = train(tiny_config.replace(epochs=1), tmp_path / "runs")
        assert result.status == "finished"
        assert models and models[0]() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("steps, tokens, expected", [(32, 20, 32), (256, 421, 19), (256, 8192, 1), (64, 100_000, 1)])
def test_explanations_run_their_steps_in_batches_of_bounded_size(steps, tokens, expected):
    from core.explain import IG_TOKENS_PER_BATCH, ig_batch

    batch = ig_batch(steps, tokens)
    assert batch == expected and (batch * tokens <= IG_TOKENS_PER_BATCH or batch == 1)


def test_an_explanation_passes_its_batch_size_to_captum(trained_run, monkeypatch):
    from captum.attr import LayerIntegratedGradients

    from core.explain import explain
    from core.predict import Predictor

    seen = []
    real = LayerIntegratedGradients.attribute

    def attribute(self, *args, **kwargs):
        seen.append((kwargs["n_steps"], kwargs["internal_batch_size"]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LayerIntegratedGradients, "attribute", attribute)
    monkeypatch.setattr("core.explain.IG_TOKENS_PER_BATCH", 64)  # a small budget: several batches per pass
    explain(Predictor(trained_run[0].run_dir), "a wonderful film, really superb")
    assert seen and all(batch < steps and batch * 10 <= 64 for steps, batch in seen)


def test_a_cpu_run_on_a_gpu_box_never_starts_cuda(tiny_config, tmp_path, monkeypatch):
    """Evaluation keeps the RNG as it was; for a CPU run only the CPU's (asking CUDA starts a context)."""
    from core.training.train import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def no_cuda(*args, **kwargs):
        raise AssertionError("a CPU run asked CUDA")

    monkeypatch.setattr(torch.cuda, "current_device", no_cuda)
    result = train(tiny_config.replace(epochs=1, device="cpu"), tmp_path / "runs")
    assert result.status == "finished"


def test_tf32_is_on_for_float32_work_only_where_the_gpu_has_it(monkeypatch):
    from core.training.model import tf32_available, use_tf32

    assert not tf32_available("cpu")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert not tf32_available("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    use_tf32("cuda")
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_the_tokenization_cache_key_does_not_change_once_the_tokenizer_has_been_used(tiny_model):
    from core.training.model import load_tokenizer
    from core.training.tokenize import tokenizer_fingerprint

    tokenizer = load_tokenizer(str(tiny_model))
    fresh = tokenizer_fingerprint(tokenizer)
    tokenizer(["a wonderful film"] * 2, truncation=True, max_length=16, padding=True)
    assert tokenizer_fingerprint(tokenizer) == fresh
    assert tokenizer_fingerprint(load_tokenizer(str(tiny_model))) == fresh
