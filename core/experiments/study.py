"""The Optuna study behind a sweep: one trial per point, in a journal file beside the sweep's record.

Why the journal file storage (and not SQLite): a sweep's workers are separate processes, on one machine or on
several that share the runs folder over a network file system. The journal is a file that each process only
appends to, under a lock Optuna takes with a symbolic link, which NFS makes atomic; SQLite's own locking is
unreliable over NFS, and a server database is more than a course GPU box should need.

Every point is queued in the study when the sweep is made (`enqueue_trial`): a grid's or a random draw's points
with their settings fixed, in the order they are planned (the same points, in the same order, as a sweep run
one after another); `--trials N` queues N points with nothing fixed, for the sampler (TPE) to choose as earlier
points finish. A worker takes the next queued point (`ask`), which the storage hands to exactly one process.
A trial's user attributes say which point it is (`point`), its run folder (`run_dir`), how it ended (`status`)
and its figures (`scores`); its value is the run's validation macro F1, never a test figure.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from core.errors import RunError

STUDY = "sweep"
STEP_PER_EPOCH = 100
"""Intermediate values are reported at round(epoch x 100): a point's evaluation after its first epoch is step 100
whatever its batch size, so the pruner compares points that saw as much data."""
PRUNE_STARTUP = 2
"""Points that must finish before any is pruned: a median of fewer says nothing."""
PRUNE_EVALS_PER_EPOCH = 4
"""With pruning, a point is evaluated this many times an epoch (unless the sweep sets eval_steps): a hopeless point
is stopped after a quarter of an epoch, not a whole one."""


def report_step(epoch: float, evals_per_epoch: int = 1) -> int:
    """The study's step for an evaluation at `epoch`: rounded to the nearest 1/evals_per_epoch of an epoch, so
    points whose epochs have other numbers of steps (batch sizes) report at the same steps and are compared."""
    if evals_per_epoch <= 1:
        return int(round(epoch * STEP_PER_EPOCH))
    return int(round(epoch * evals_per_epoch)) * (STEP_PER_EPOCH // evals_per_epoch)


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its "Trial 3 finished" lines are ours to say
    warnings.filterwarnings("ignore", module="optuna")
    return optuna


def storage(journal: Path):
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    except OSError as exc:
        raise RunError(f"cannot open the sweep's study {journal}: {exc.strerror or exc}; check the runs folder "
                       "is writable") from None


def sampler(record: dict[str, Any], trial_number: int = 0):
    """The sampler for the point of trial `trial_number`: seeded by the sweep's seed and that number, so each
    point draws differently however many workers start at once (two workers seeded alike drew the same points),
    and a sweep run again draws the same ones."""
    optuna = _optuna()
    seed = int(record.get("base", {}).get("seed", 42)) * 1000 + trial_number
    if record.get("trials"):
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # several workers: spread out
    return optuna.samplers.RandomSampler(seed=seed)  # every point is fixed: the sampler never chooses


def pruner(record: dict[str, Any]):
    optuna = _optuna()
    if not record.get("prune"):
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP, n_warmup_steps=0, n_min_trials=PRUNE_STARTUP)


def create(journal: Path, record: dict[str, Any]) -> None:
    """A new study with every point of `record` queued."""
    optuna = _optuna()
    study = optuna.create_study(storage=storage(journal), study_name=STUDY, direction="maximize",
                                sampler=sampler(record), pruner=pruner(record))
    for k, point in enumerate(record["points"]):
        study.enqueue_trial(point["settings"], user_attrs={"point": k}, skip_if_exists=False)


def load(journal: Path, record: dict[str, Any]):
    optuna = _optuna()
    if not journal.is_file():
        raise RunError(f"the sweep's study {journal.name} is missing; the sweep's runs are in the runs folder, "
                       "but the sweep cannot go on: start a new one")
    try:
        return optuna.load_study(study_name=STUDY, storage=storage(journal), sampler=sampler(record),
                                 pruner=pruner(record))
    except (KeyError, ValueError) as exc:
        raise RunError(f"the sweep's study {journal.name} is damaged ({exc}); start a new sweep") from None


def trials(journal: Path, record: dict[str, Any]) -> dict[int, Any]:
    """The study's trials by the point they train (FrozenTrial), read without changing anything."""
    out: dict[int, Any] = {}
    for trial in load(journal, record).get_trials(deepcopy=False):
        point = trial.user_attrs.get("point")
        if isinstance(point, int) and point not in out:
            out[point] = trial
    return out


def suggest(trial, name: str, spec: Any) -> Any:
    """A point's value of `name`: fixed when the point was queued with it (grid, random draw), else the sampler's
    choice within `spec` (a list of values, or [low, high], on a log scale over a decade or more)."""
    from core.config import FIELDS

    if isinstance(spec, tuple):
        low, high = spec
        if FIELDS[name].type == "int":
            return trial.suggest_int(name, int(low), int(high))
        log = low > 0 and high / low >= 10
        value = trial.suggest_float(name, float(low), float(high), log=log)
        return float(f"{value:.3g}")  # as a random draw rounds it (a queued value is rounded already)
    return trial.suggest_categorical(name, list(spec))


def is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
