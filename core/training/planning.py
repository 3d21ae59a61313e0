"""What a run will do before it starts: its steps and an estimated duration, for F2 and the start question."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from core.config import TrainConfig, split_sizes
from core.format import format_duration, short_name
from core.runs.store import TrainRate


@dataclass(frozen=True)
class TrainingPlan:
    """Figures derived from a config, shown while editing it."""

    train_samples: int
    effective_batch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def plan(config: TrainConfig, available_rows: int | None = None) -> TrainingPlan:
    """Steps per epoch, total and warmup steps for `config` on `available_rows` cleaned rows."""
    if config.max_samples == 0:
        rows = available_rows or 0
    else:
        rows = min(config.max_samples, available_rows) if available_rows else config.max_samples
    train = split_sizes(rows, config.val_fraction, config.test_fraction)[0]
    effective = config.batch_size * config.gradient_accumulation * config.num_processes
    steps = math.ceil(train / effective) if train > 0 else 0
    total = steps * config.epochs
    return TrainingPlan(max(train, 0), effective, steps, total, math.ceil(total * config.warmup_ratio))


@dataclass(frozen=True)
class Estimate:
    """An estimated training time and what it rests on."""

    seconds: float
    basis: str


def estimate(config: TrainConfig, figures: TrainingPlan, rate: TrainRate | None, preview=None) -> Estimate | None:
    """Training time from an earlier run's rate, scaled by tokens per review when both are known.

    Time per review grows with its length: an earlier run on short sentences says little about long
    reviews, so its rate is scaled by (tokens per review here, truncated at max_length) / (tokens there).
    `preview` is the loaded core.data.stats.Preview, if it is this data's.
    """
    if rate is None or figures.train_samples <= 0:
        return None
    seconds = rate.seconds(figures.train_samples, config.epochs)
    stamp = re.match(r"\d{8}-\d{6}", rate.run_name)  # a run folder's name begins with its start time
    basis = f"from run {stamp.group() if stamp else rate.run_name}"
    here = preview.stats.mean_tokens_at(config.max_length) if preview is not None else None
    if here and rate.mean_tokens:
        seconds *= here / rate.mean_tokens
        basis += f", scaled to {here:.0f} tokens per review (it had {rate.mean_tokens:.0f})"
    elif rate.mean_tokens:
        basis += "; assumes reviews as long as that run's (load the data on F1 to scale it)"
    return Estimate(seconds, basis)


def start_question(config: TrainConfig, preview=None, rate: TrainRate | None = None) -> str:
    """The plan a start confirmation shows: model, data, steps and the estimate."""
    rows = preview.rows_for(config) if preview is not None else None
    figures = plan(config, rows)
    found = estimate(config, figures, rate, preview if preview is not None and not preview.stale(config) else None)
    lines = [
        f"Start training {short_name(config.model)} on {short_name(config.dataset)}?",
        f"{figures.train_samples:,} training reviews, {config.epochs} epoch{'s' if config.epochs != 1 else ''}, "
        f"{figures.total_steps:,} steps of {figures.effective_batch}"
        + ("" if rows is not None else " (from max_samples: the data is not loaded)"),
        f"estimated time: ~{format_duration(found.seconds)} ({found.basis})" if found
        else "estimated time: unknown (no earlier run of this model on this device)",
    ]
    return "\n".join(lines)
