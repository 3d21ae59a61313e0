"""Out-of-sample probabilities for a run's training reviews, by cross-validation (`sentitune doctor RUN --folds K`).

A run's model trained on its training reviews, so what it says of them is in-sample: it has partly learned their
labels, the wrong ones too. Confident learning (cleanlab) wants probabilities from a model that never saw the
review. Cross-validation gives them: the training split is cut into K stratified folds, and K fresh copies of the
run's pretrained model are fine-tuned with the run's own settings, each on K-1 folds, each scoring the fold it
left out. It costs K trainings on (K-1)/K of the data, so it is asked for, never done by default.

Stored in the run folder as `doctor-folds.npz` (the probabilities, the folds' predictions of validation and test,
and what they were computed from); the doctor reuses them while the run's data and settings are the same.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ConfigError

FILE = "doctor-folds.npz"
MAX_FOLDS = 10


@dataclass(frozen=True)
class FoldProbabilities:
    train: np.ndarray
    """Training reviews x labels, each row from the fold model that never trained on it."""
    held: dict[str, np.ndarray]
    """validation / test reviews x labels: the mean of the K fold models (none of them trained on these)."""
    folds: int
    seconds: float


def check_folds(folds: int, labels: np.ndarray | None = None) -> None:
    """ConfigError unless 2 <= folds <= MAX_FOLDS and (given the training labels) every label fills every fold."""
    if not 2 <= folds <= MAX_FOLDS:
        raise ConfigError({"folds": f"{folds} is out of range: give 2 to {MAX_FOLDS} (4 is usual; each fold is "
                                    "one more training)"})
    if labels is not None:
        smallest = int(np.bincount(labels).min()) if len(labels) else 0
        if smallest < folds:
            raise ConfigError({"folds": f"{folds} folds need at least {folds} training reviews of every label "
                                        f"(the rarest has {smallest}); use fewer folds"})


def _key(data, config, folds: int) -> str:
    return f"{data.fingerprint()}|{config.model}|{folds}|{config.seed}|{config.epochs}|{config.learning_rate}|" \
           f"{config.batch_size}|{config.max_length}"


def load_saved(run_path: Path, data, config, folds: int | None = None) -> FoldProbabilities | None:
    """The fold probabilities stored in the run folder, if they match its data and settings (and `folds`)."""
    path = Path(run_path) / FILE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            k = int(saved["folds"])
            if (folds is not None and k != folds) or str(saved["key"]) != _key(data, config, k):
                return None
            return FoldProbabilities(saved["train"], {"validation": saved["validation"], "test": saved["test"]}, k,
                                     float(saved["seconds"]))
    except (OSError, ValueError, KeyError):
        return None  # damaged: computed again when asked


def cross_validate(run_path: str | Path, folds: int = 4, on_progress: Callable[[str], None] | None = None,
                   stop: threading.Event | None = None, data=None) -> FoldProbabilities:
    """Train the K fold models of the run (see the module) and store their probabilities in the run folder.
    Setting `stop` ends it at the next step (core.training.stopping.StoppedEarly), keeping nothing. `data`: the
    run's prepared data, when the caller has loaded and checked it already."""
    import os

    import torch

    from core.data.clean import prepare
    from core.runs.store import Run
    from core.training.setup import check_same_data

    run = Run(Path(run_path))
    config = run.train_config()
    if data is None:
        data = prepare(config)
        check_same_data(run.path, data)
    labels = data.splits["train"]["label"].to_numpy()
    check_folds(folds, labels)
    say = on_progress or (lambda line: None)
    started = time.monotonic()
    from sklearn.model_selection import StratifiedKFold

    from core.errors import TrainingError
    from core.training.logs import capture_library_logs
    from core.training.model import choose_precision, load_tokenizer, resolve_device
    from core.training.oom import half_batch, is_oom, oom_message, release_failure

    device = resolve_device(config.device)
    precision = choose_precision(config.precision, device)
    if device == "cuda":  # a shared box: the GPU with room for the run, as the run itself was placed
        from core.training.gpus import place_run
        from core.training.preflight import model_config

        place_run(config, model_config(config.model), precision, say)
    tokenizer = load_tokenizer(config.model)
    encoded = {name: _encode(tokenizer, data.splits[name]["text"].tolist(), config.max_length)
               for name in ("train", "validation", "test")}
    names = list(data.label_names)
    out = np.zeros((len(labels), len(names)))
    held = {name: np.zeros((len(data.splits[name]), len(names))) for name in ("validation", "test")}
    cutter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    cuts = cutter.split(np.zeros(len(labels)), labels)
    recipe = config  # halved in batch after running out of memory; the run's own settings stay the key
    with capture_library_logs():  # the libraries' load reports and bars stay off the terminal
        for k, (fit, left_out) in enumerate(cuts, 1):
            say(f"fold {k}/{folds}: fine-tuning {Path(config.model).name} on {len(fit)} training reviews, "
                f"scoring the {len(left_out)} left out")
            while True:
                try:
                    model = _fit(recipe, names, device, precision, [encoded["train"][i] for i in fit], labels[fit],
                                 tokenizer, seed=recipe.seed + k,
                                 say=lambda line, k=k: say(f"fold {k}/{folds}: {line}"), stop=stop)
                    out[left_out] = _score(model, [encoded["train"][i] for i in left_out], tokenizer, device,
                                           precision, recipe.eval_batch_size)
                    scores = {name: _score(model, encoded[name], tokenizer, device, precision,
                                           recipe.eval_batch_size) for name in held}
                    break
                except Exception as exc:  # out of memory: this fold again at half the batch, as a run retries
                    if not is_oom(exc):
                        raise
                    smaller = half_batch(recipe)
                    if smaller is None:
                        raise TrainingError(f"fold {k}/{folds}: {oom_message(recipe)}") from None
                    release_failure(exc)
                    say(f"fold {k}/{folds}: out of memory at batch_size {recipe.batch_size}; again at "
                        f"{smaller.batch_size} with gradient_accumulation {smaller.gradient_accumulation}")
                    recipe = smaller.replace(eval_batch_size=max(1, smaller.eval_batch_size // 2))
            for name in held:
                held[name] += scores[name] / folds
            del model
            if device == "cuda":
                torch.cuda.empty_cache()
    result = FoldProbabilities(out, held, folds, time.monotonic() - started)
    partial = run.path / f".{FILE}.partial.npz"
    try:
        np.savez(partial, train=out, validation=held["validation"], test=held["test"], folds=folds,
                 key=_key(data, config, folds), seconds=result.seconds)
        os.replace(partial, run.path / FILE)
    except OSError as exc:  # a read-only run folder: the result is still used, only not kept
        say(f"could not keep the fold probabilities in {run.path} ({os.strerror(exc.errno or 0) or exc}); "
            "they are used this time only")
    return result


def _encode(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []


def _batches(ids: list[list[int]], order, size: int, tokenizer, labels=None):
    import torch

    for start in range(0, len(order), size):
        chosen = order[start:start + size]
        batch = tokenizer.pad({"input_ids": [ids[i] for i in chosen]}, return_tensors="pt")
        if labels is not None:
            batch["labels"] = torch.as_tensor(labels[chosen], dtype=torch.long)
        yield chosen, batch


def _autocast(device: str, precision: str):
    import contextlib

    import torch

    if precision in ("bf16", "fp16"):
        return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


def _fit(config, names: list[str], device: str, precision: str, ids, labels: np.ndarray, tokenizer, seed: int,
         say: Callable[[str], None], stop: threading.Event | None = None):
    """One fold model: the run's recipe (AdamW, its schedule and warm-up, gradient accumulation, clipping at 1), no
    checkpoints."""
    import torch
    import transformers

    from core.training.model import load_model

    transformers.set_seed(seed)
    model = load_model(config.model, names).to(device).train()
    micro, group = config.batch_size, config.batch_size * config.gradient_accumulation
    steps = config.epochs * math.ceil(len(ids) / group)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = transformers.get_scheduler(config.lr_scheduler, optimizer,
                                          num_warmup_steps=int(math.ceil(config.warmup_ratio * steps)),
                                          num_training_steps=steps)
    scaler = torch.amp.GradScaler(device) if precision == "fp16" else None
    rng = np.random.default_rng(seed)
    step, last = 0, time.monotonic()
    for epoch in range(config.epochs):
        order = _grouped_by_length(rng.permutation(len(ids)), ids, group)
        for start in range(0, len(order), group):
            if stop is not None and stop.is_set():
                from core.training.stopping import StoppedEarly

                raise StoppedEarly
            chosen = order[start:start + group]
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for _, inputs in _batches(ids, chosen, micro, tokenizer, labels):  # accumulated as the run does
                inputs = {k: v.to(device) for k, v in inputs.items()}
                with _autocast(device, precision):
                    loss = model(**inputs).loss * (len(inputs["labels"]) / len(chosen))
                (scaler.scale(loss) if scaler is not None else loss).backward()
                total += float(loss.detach())
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            schedule.step()
            step += 1
            if time.monotonic() - last >= 10 or step == steps:
                last = time.monotonic()
                say(f"step {step}/{steps}, epoch {epoch + 1}/{config.epochs}, loss {total:.3f}")
    return model.eval()


def _grouped_by_length(order: np.ndarray, ids, group: int) -> np.ndarray:
    """The shuffled `order`, each run of 50 batches sorted longest first: batches of like lengths carry little
    padding, as the run's own `group_by_length` sampler does, while every batch is still drawn at random."""
    mega = 50 * group
    chunks = [sorted(order[i:i + mega], key=lambda j: -len(ids[j])) for i in range(0, len(order), mega)]
    return np.asarray([j for chunk in chunks for j in chunk], dtype=int)


def _score(model, ids, tokenizer, device: str, precision: str, batch_size: int) -> np.ndarray:
    import torch

    out = np.zeros((len(ids), model.config.num_labels))
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # little padding per batch
    with torch.no_grad():
        for chosen, inputs in _batches(ids, order, batch_size, tokenizer):
            with _autocast(device, precision):
                logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
            out[chosen] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return out
