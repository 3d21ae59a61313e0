"""The training configuration: one frozen dataclass, validated on creation, saved as TOML."""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import ConfigError

GROUPS = ("model", "data", "optimisation", "evaluation", "hardware")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
TRACKERS = ("none", "tensorboard", "trackio", "wandb")
SCHEDULERS = ("linear", "cosine", "constant_with_warmup")


def _opt(default: Any, group: str, help: str, **extra: Any) -> Any:
    """A config field whose metadata carries its form group and help text."""
    return field(default=default, metadata={"group": group, "help": help, **extra})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a fine-tuning run; defaults are the course recipe."""

    model: str = _opt(
        "distilbert-base-uncased", "model",
        "Hugging Face model id or a local model folder (config + weights + tokenizer).",
    )
    max_length: int = _opt(
        256, "model", "Longest input in tokens; longer reviews are truncated.", min=8, max=8192,
    )
    dataset: str = _opt(
        "amazon_polarity", "data",
        "Hub dataset name, or a local .csv/.tsv/.json/.jsonl/.parquet file or folder.",
    )
    dataset_config: str = _opt("", "data", "Hub dataset configuration (subset) name; empty for the default.")
    text_columns: tuple[str, ...] = _opt(
        (), "data", "Text columns joined in order, comma separated; empty to auto-detect.",
    )
    label_column: str = _opt("", "data", "Label column; empty to auto-detect.")
    max_samples: int = _opt(
        5000, "data", "Stratified, seeded subset taken before splitting; 0 uses every row.", min=0,
    )
    val_fraction: float = _opt(0.15, "data", "Share of rows held out for validation.", min=0.01, max=0.5)
    test_fraction: float = _opt(0.15, "data", "Share of rows held out for the final test.", min=0.01, max=0.5)
    epochs: int = _opt(3, "optimisation", "Passes over the training split.", min=1, max=1000)
    batch_size: int = _opt(16, "optimisation", "Training examples per device per step.", min=1, max=4096)
    learning_rate: float = _opt(2e-5, "optimisation", "Peak learning rate of AdamW.", min=1e-8, max=1.0)
    weight_decay: float = _opt(0.01, "optimisation", "AdamW weight decay.", min=0.0, max=1.0)
    warmup_ratio: float = _opt(
        0.0, "optimisation", "Share of steps spent warming the learning rate up from 0 (0.06-0.1 often steadies long runs).",
        min=0.0, max=0.9,
    )
    lr_scheduler: str = _opt("linear", "optimisation", "Learning-rate schedule after warmup.", choices=SCHEDULERS)
    gradient_accumulation: int = _opt(
        1, "optimisation", "Steps whose gradients add up before one optimizer update.", min=1, max=1024,
    )
    seed: int = _opt(
        42, "optimisation", "Seed for sampling, splitting, initialisation and shuffling.", min=0, max=2**32 - 1,
    )
    eval_steps: int = _opt(
        0, "evaluation", "Evaluate (and checkpoint) every N optimizer steps; 0 means once per epoch.", min=0,
    )
    early_stopping_patience: int = _opt(
        0, "evaluation", "Stop after this many evaluations without a better validation macro F1; 0 is off.", min=0,
    )
    eval_batch_size: int = _opt(64, "evaluation", "Examples per step when evaluating.", min=1, max=4096)
    max_eval_samples: int = _opt(
        0, "evaluation", "Cap on validation rows scored each epoch (a seeded sample); 0 scores them all.", min=0,
    )
    baseline: bool = _opt(True, "evaluation", "Score the untuned model on the test split first, to show the gain.")
    baseline_samples: int = _opt(
        2000, "evaluation", "Test reviews the untuned model is scored on (a seeded sample); 0 scores them all.", min=0,
    )
    calibrate: bool = _opt(
        True, "evaluation", "Fit a temperature on the validation split so confidences match accuracy (labels unchanged).",
    )
    report_to: str = _opt(
        "none", "evaluation", "Also log to an experiment tracker: tensorboard (event files in RUN/tensorboard), "
        "trackio or wandb, where installed.", choices=TRACKERS,
    )
    logging_steps: int = _opt(
        0, "evaluation", "Report progress every N steps; 0 reports about once a second.", min=0,
    )
    device: str = _opt("auto", "hardware", "auto picks CUDA, then Apple MPS, then CPU.", choices=DEVICES)
    precision: str = _opt(
        "auto", "hardware", "auto: bf16 where the GPU supports it, else fp16 on CUDA, fp32 on CPU.",
        choices=PRECISIONS,
    )
    num_processes: int = _opt(
        1, "hardware", "Training processes (one per GPU) started with `accelerate launch`; batch_size is per process.",
        min=1, max=1024,
    )
    accelerate_config: str = _opt(
        "", "hardware", "An `accelerate config` YAML file for multi-node runs; empty for one machine.",
    )
    wait_for_gpu: bool = _opt(
        False, "hardware", "On a shared GPU box: when no GPU has the memory the run needs, wait for one (else refuse).",
    )

    def __post_init__(self) -> None:
        errors = self.validate()
        if errors:
            raise ConfigError(errors)

    def validate(self) -> dict[str, str]:
        """Every invalid field with its message (empty when the config is valid)."""
        errors: dict[str, str] = {}
        for f in fields(self):
            message = check_value(f.name, getattr(self, f.name))
            if message:
                errors[f.name] = message
        if "val_fraction" not in errors and "test_fraction" not in errors:
            if self.val_fraction + self.test_fraction > 0.6:
                errors["test_fraction"] = "validation + test shares must leave at least 40% for training"
            elif "max_samples" not in errors and 0 < self.max_samples < self.min_samples():
                errors["max_samples"] = (f"{self.max_samples} is too few rows to split into training, validation and "
                                         f"test sets of both classes; use at least {self.min_samples()} (or 0 for "
                                         "every row)")
        return errors

    def min_samples(self) -> int:
        """The fewest rows whose training, validation and test splits can each hold a row of two classes."""
        n = 2
        while min(split_sizes(n, self.val_fraction, self.test_fraction)) < 2:
            n += 1
        return n

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated like a new config)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-ready values."""
        data = dataclasses.asdict(self)
        data["text_columns"] = list(self.text_columns)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
        """Build from a mapping of typed or string values; every bad key or value is reported at once."""
        base = base or cls()
        values, errors = parse_values(data)
        if errors:
            # Report the value errors together with whatever the valid values would still break.
            merged = {**base.to_dict(), **values}
            merged["text_columns"] = tuple(merged["text_columns"])
            errors = {**_unchecked(merged).validate(), **errors}
            raise ConfigError(errors)
        return dataclasses.replace(base, **values)


FIELDS = {f.name: f for f in fields(TrainConfig)}


def _unchecked(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig built without running validation, to collect every error at once."""
    config = object.__new__(TrainConfig)
    for name in FIELDS:
        object.__setattr__(config, name, values[name])
    return config


def help_text(name: str) -> str:
    """The one-line help of a config field."""
    return FIELDS[name].metadata["help"]


def fields_by_group() -> dict[str, list[str]]:
    """Field names in form order, grouped."""
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for f in fields(TrainConfig):
        groups[f.metadata["group"]].append(f.name)
    return groups


def check_value(name: str, value: Any) -> str | None:
    """The problem with a typed value for field `name`, or None."""
    meta = FIELDS[name].metadata
    kind = FIELDS[name].type
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be a whole number"
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
        return "must be a number"
    if kind == "str" and not isinstance(value, str):
        return "must be text"
    if kind == "bool" and not isinstance(value, bool):
        return "must be true or false"
    if "min" in meta and value < meta["min"]:
        return f"must be at least {meta['min']}"
    if "max" in meta and value > meta["max"]:
        return f"must be at most {meta['max']}"
    if "choices" in meta and value not in meta["choices"]:
        return f"must be one of: {', '.join(meta['choices'])}"
    if name in ("model", "dataset") and not value.strip():
        return "must not be empty"
    if name == "text_columns" and any(not c.strip() for c in value):
        return "column names must not be empty"
    return None


def parse_value(name: str, raw: Any) -> tuple[Any, str | None]:
    """Turn a raw value (a form's text, a TOML value, a CLI flag) into the field's type."""
    if name not in FIELDS:
        close = difflib.get_close_matches(name, FIELDS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return None, f"unknown setting{hint}"
    kind = FIELDS[name].type
    try:
        if kind == "tuple[str, ...]":
            if isinstance(raw, str):
                raw = raw.split(",")
            value: Any = tuple(str(c).strip() for c in raw if str(c).strip())
        elif kind == "bool":
            value = _parse_bool(raw)
        elif kind == "int":
            value = _parse_int(raw)
        elif kind == "float":
            value = float(raw.strip()) if isinstance(raw, str) else raw
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError
            value = float(value)
        else:
            value = raw.strip() if isinstance(raw, str) else raw
    except (ValueError, TypeError):
        expected = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(kind, "text")
        return None, f"must be {expected}, not {raw!r}"
    return value, check_value(name, value)


def format_value(name: str, value: Any) -> str:
    """A field's value as the text a form input holds; `parse_value` reads it back."""
    if FIELDS[name].type == "tuple[str, ...]":
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip().replace("_", "")
        if text.lower() == "all":  # max_samples = "all"
            return 0
        number = float(text)
        if number.is_integer():
            return int(number)
    raise ValueError


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError


def parse_values(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse many raw values; returns (typed values, errors by field)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in data.items():
        value, error = parse_value(name, raw)
        if error:
            errors[name] = error
        else:
            values[name] = value
    return values, errors


# Settings that change what a dataset preview shows (max_length only moves its truncation line).
PREVIEW_FIELDS = ("dataset", "dataset_config", "text_columns", "label_column", "max_samples", "val_fraction",
                  "test_fraction", "seed", "model")


# Presets the hyperparameter form offers; values override the course defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "quick check": {"epochs": 1, "max_samples": 500},
    "course default": {},
    "thorough": {"epochs": 5, "max_samples": 20000, "early_stopping_patience": 2, "eval_steps": 0},
}


def preset(name: str, base: TrainConfig | None = None) -> TrainConfig:
    """The course defaults with a preset applied, keeping `base`'s model and data source."""
    if name not in PRESETS:
        raise ConfigError({"preset": f"unknown preset; choose one of: {', '.join(PRESETS)}"})
    keep = {}
    if base is not None:
        keep = {k: getattr(base, k) for k in ("model", "dataset", "dataset_config", "text_columns", "label_column")}
    return TrainConfig(**keep, **PRESETS[name])


def changes(old: TrainConfig, new: TrainConfig) -> list[tuple[str, Any, Any]]:
    """(field, old value, new value) for every field `new` changes, in form order."""
    return [(f.name, getattr(old, f.name), getattr(new, f.name)) for f in fields(TrainConfig)
            if getattr(old, f.name) != getattr(new, f.name)]


def load_toml(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a config file; group tables ([optimisation] ...) and flat keys both work."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError({"config": f"{path} is a folder; give a .toml file (sentitune train --config job.toml)"})
    try:
        text = path.read_bytes().decode("utf-8")
        # Notepad starts a UTF-8 file with a byte order mark, which TOML does not allow: it is no setting
        raw = tomllib.loads(text.removeprefix("\ufeff"))
    except FileNotFoundError:
        raise ConfigError({"config": f"file not found: {path}"}) from None
    except OSError as exc:
        raise ConfigError({"config": f"cannot read {path}: {exc.strerror or exc}"}) from None
    except UnicodeDecodeError:
        raise ConfigError({"config": f"{path} is not UTF-8 text; save it as UTF-8"}) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError({"config": f"{path} is not valid TOML ({exc})"}) from None
    flat: dict[str, Any] = {}
    where: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        items = value.items() if isinstance(value, dict) and key in GROUPS else [(key, value)]
        table = f"[{key}]" if isinstance(value, dict) and key in GROUPS else "the top level"
        for name, item in items:
            if name in flat:
                errors[name] = f"set twice in {path.name} (in {where[name]} and in {table}); keep one"
            flat[name], where[name] = item, table
    if errors:
        raise ConfigError(errors)
    return TrainConfig.from_dict(flat, base=base)


def dump_toml(config: TrainConfig) -> str:
    """The config as TOML text, one table per form group, each key with its help as a comment."""
    lines = ["# sentitune training configuration"]
    for group, names in fields_by_group().items():
        lines += ["", f"[{group}]"]
        for name in names:
            lines.append(f"# {help_text(name)}")
            lines.append(f"{name} = {_toml_value(getattr(config, name))}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def save_toml(config: TrainConfig, path: str | Path) -> Path:
    """Write the config to `path` (atomically) and return the path."""
    from core.files import write_text_atomic

    path = Path(path)
    write_text_atomic(path, dump_toml(config))
    return path


def split_sizes(rows: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, validation, test) row counts for a dataset of `rows` rows."""
    val = round(rows * val_fraction)
    test = round(rows * test_fraction)
    return rows - val - test, val, test


LAST_CONFIG = "last.toml"  # in the runs folder: the settings the app last started a run with


def save_last_config(config: TrainConfig, runs_root: str | Path) -> Path:
    """Remember `config` as the last one started with this runs folder."""
    return save_toml(config, Path(runs_root) / LAST_CONFIG)


def last_config(runs_root: str | Path) -> TrainConfig | None:
    """The settings last started with this runs folder, or None (none yet, or a file this version cannot read)."""
    path = Path(runs_root) / LAST_CONFIG
    if not path.is_file():
        return None
    try:
        return load_toml(path)
    except ConfigError:
        return None
