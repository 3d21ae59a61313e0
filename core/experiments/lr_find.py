"""The learning-rate range test: train briefly while the learning rate rises exponentially, watch the loss.

The loss falls once the learning rate is large enough to move the model, and blows up once it is far too
high. Two usual readings of the curve: the steepest descent of the smoothed loss against log(learning
rate), and a tenth of the learning rate at its lowest point. For fine-tuning a pretrained model over whole
epochs the steepest point aims too high (on MiniLM and MR sentences it was 6e-4, where three epochs
collapsed to one class; BENCHMARKS.md), so the suggestion is the tenth of the minimum, and the steepest
point is reported beside it. The model is a fresh copy of the pretrained one, thrown away afterwards:
nothing is saved but a small JSON record of the curve under the runs folder.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from core.config import TrainConfig
from core.errors import ConfigError, TrainingError
from core.files import write_json_atomic

START_LR = 1e-6  # fine-tuning learning rates live between 1e-6 and 1e-2
END_LR = 0.1
STEPS_PER_DECADE = 50
"""At 20 steps a decade (100 over the default range) the model saw too few batches at each learning rate to learn:
on 2,000 MR sentences the loss fell 2-3% and no rate could be read off the curve. At 50 a decade it learns enough
to fall clearly before it diverges (BENCHMARKS.md, over 5 seeds)."""
STEPS = 250  # the default range's five decades
SMOOTHING = 0.9  # exponential moving average of the loss: one batch's noise must not decide the suggestion
DIVERGED = 4.0  # the test ends once the smoothed loss is this many times its lowest value
MIN_FALL = 0.05  # below a 5% fall the curve is noise, and its steepest point means nothing
MAX_STEPS = 10_000
MAX_LR = 10.0  # far past where any fine-tune diverges
METHOD = "a tenth of the learning rate at the lowest smoothed loss (the steepest descent, also given, aims higher)"


@dataclass(frozen=True)
class LrFinding:
    learning_rates: list[float]
    losses: list[float]
    """Smoothed (bias-corrected moving average), one per step."""
    raw_losses: list[float]
    suggested_learning_rate: float | None
    """A tenth of `lowest_loss_learning_rate`; None when the loss never fell: the curve says nothing then."""
    steepest_learning_rate: float | None
    lowest_loss_learning_rate: float | None
    method: str
    diverged: bool
    seconds: float
    stopped: bool = False
    """Stopped before its last step: the curve is the part it ran."""
    record: str | None = None
    """Where the record was written."""

    def to_dict(self) -> dict:
        """As JSON takes it: a loss that blew up (NaN, infinity) is null, never the invalid token NaN."""
        return {k: [_finite(x) for x in v] if isinstance(v, list) else _finite(v) for k, v in asdict(self).items()}


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def check_range(steps: int, start_lr: float, end_lr: float) -> None:
    """ConfigError naming the flag for a range the test cannot run."""
    errors = {}
    if not 10 <= steps <= MAX_STEPS:
        errors["steps"] = f"--steps takes 10 to {MAX_STEPS}, not {steps}"
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if not (math.isfinite(value) and 0 < value <= MAX_LR):
            errors[name] = f"--{name.replace('_', '-')} must be a number above 0 and at most {MAX_LR:g}, not {value}"
    if not errors and start_lr >= end_lr:
        errors["start_lr"] = f"--start-lr ({start_lr:g}) must be below --end-lr ({end_lr:g})"
    if errors:
        raise ConfigError(errors)


def default_steps(start_lr: float = START_LR, end_lr: float = END_LR) -> int:
    """STEPS_PER_DECADE over the range (at least 100); STEPS for a range check_range refuses."""
    if not (math.isfinite(start_lr) and math.isfinite(end_lr) and 0 < start_lr < end_lr):
        return STEPS
    return max(100, min(MAX_STEPS, round(STEPS_PER_DECADE * math.log10(end_lr / start_lr))))


def suggest(learning_rates: list[float], losses: list[float]) -> tuple[float | None, float | None, float | None]:
    """(suggestion, steepest, lowest): a tenth of the learning rate at the lowest loss, the learning rate at the
    steepest fall against log(learning rate), and the one at the lowest loss; all None if the loss never fell."""
    steepest = steepest_descent(learning_rates, losses)
    if steepest is None:
        return None, None, None
    lowest = learning_rates[min(range(len(losses)), key=losses.__getitem__)]
    return lowest / 10, steepest, lowest


def steepest_descent(learning_rates: list[float], losses: list[float]) -> float | None:
    """The learning rate at the steepest fall of `losses` against log(learning rate), or None if it never fell."""
    n = len(losses)
    if n < 5:
        return None
    logs = [math.log10(lr) for lr in learning_rates]
    lowest = min(range(n), key=losses.__getitem__)
    # The first tenth is warm-up of the moving average; after the lowest point the loss only rises.
    start = max(1, n // 10)
    if lowest <= start or losses[lowest] > (1 - MIN_FALL) * losses[start]:
        return None  # flat (noise only): no learning rate in the range trained
    slopes = [(losses[i + 1] - losses[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(start, min(lowest, n - 1))]
    if not slopes or min(slopes) >= 0:
        return None
    return learning_rates[start + min(range(len(slopes)), key=slopes.__getitem__)]


def find_learning_rate(config: TrainConfig, runs_root: str | Path = "runs", steps: int | None = None,
                       start_lr: float = START_LR, end_lr: float = END_LR,
                       on_step: Callable[[int, int, float, float], None] | None = None,
                       on_stage: Callable[[str], None] | None = None,
                       stop_event: threading.Event | None = None) -> LrFinding:
    """Run the range test for `config` (its data, model, batch size, max_length); `on_step(step, steps, lr,
    smoothed loss)` follows it; `steps` defaults to STEPS_PER_DECADE over the range. Bad input raises the same
    CoreErrors as `train`, before any step."""
    from core.training.logs import RunLogHandler, capture_library_logs
    from core.training.preflight import preflight
    from core.training.setup import Emitter, RunSetup, load
    from core.training.stopping import StopSignal

    steps = default_steps(start_lr, end_lr) if steps is None else steps
    check_range(steps, start_lr, end_lr)
    started = time.monotonic()
    runs_root = Path(runs_root)
    stop = StopSignal(stop_event)
    preflight(config, runs_root)

    def stage(event) -> None:
        if on_stage is not None and hasattr(event, "detail"):
            on_stage(event.detail)

    with capture_library_logs():
        loaded = load(RunSetup(config, runs_root, None, None, Emitter(stage), stop, RunLogHandler()))
        lrs, raw, smooth = _range_test(loaded, config, runs_root, steps, start_lr, end_lr, on_step, on_stage, stop)
    diverged = bool(smooth) and (math.isnan(smooth[-1]) or smooth[-1] > DIVERGED * min(smooth))
    stopped = len(lrs) < steps and not diverged and stop.requested()
    finding = LrFinding(lrs, smooth, raw, *suggest(lrs, smooth), METHOD, diverged, time.monotonic() - started,
                        stopped)
    path = runs_root / f"lr-find-{time.strftime('%Y%m%d-%H%M%S')}.json"
    try:
        write_json_atomic(path, {"config": config.to_dict(), **finding.to_dict()})
    except OSError:
        return finding  # the curve is still shown; only the record is missing
    return LrFinding(**{**finding.to_dict(), "record": str(path)})


def _range_test(loaded, config: TrainConfig, runs_root: Path, steps: int, start_lr: float, end_lr: float,
                on_step, on_stage, stop) -> tuple[list[float], list[float], list[float]]:
    import torch

    from core.training.tokenize import PaddingCollator, model_inputs, tokenize_splits

    if on_stage is not None:
        on_stage("tokenizing the training split")
    tokenized, _ = tokenize_splits(loaded.data, loaded.tokenizer, config.max_length,
                                   runs_root / ".cache" / "tokenized", stop=stop)
    train = model_inputs(tokenized["train"])
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(train, batch_size=config.batch_size, shuffle=True, generator=generator,
                                         collate_fn=PaddingCollator(loaded.tokenizer))
    from core.training.model import use_tf32

    use_tf32(loaded.device)
    model = loaded.model.to(loaded.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=start_lr, weight_decay=config.weight_decay)
    factor = (end_lr / start_lr) ** (1 / max(steps - 1, 1))
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    average = 0.0
    batches = iter(loader)
    if on_stage is not None:
        on_stage(f"raising the learning rate from {start_lr:.0e} to {end_lr:.0e} over {steps} steps")
    for step in range(steps):
        if stop.requested():  # Ctrl+C, the app's Escape: the curve so far is the result
            break
        try:
            batch = next(batches)
        except StopIteration:  # a small training split: go round again
            batches = iter(loader)
            batch = next(batches)
        lr = start_lr * factor ** step
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = {k: v.to(loaded.device) for k, v in batch.items()}
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as the Trainer clips
        optimizer.step()
        value = float(loss.detach())
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed = average / (1 - SMOOTHING ** (step + 1))
        lrs.append(lr)
        raw.append(value)
        smooth.append(smoothed)
        if on_step is not None:
            on_step(step + 1, steps, lr, smoothed)
        if math.isnan(smoothed) or step > steps // 10 and smoothed > DIVERGED * min(smooth):
            break
    if not lrs:
        stop.check()  # stopped before the first step: nothing to show
        raise TrainingError("the learning-rate test ran no step; check the training split is not empty")
    return lrs, raw, smooth
