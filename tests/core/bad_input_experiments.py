"""The bad-input table's cases for sweeps and the learning-rate finder (merged into tests/core/test_bad_input.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.core.bad_input_support import Case, Env


def _sweep(env: Env, *grid: str) -> list[str]:
    return ["sweep", "--model", str(env.model), "--dataset", str(env.good), "--output-dir", str(env.runs),
            *[arg for item in grid for arg in ("--grid", item)]]


def _pending_sweep(env: Env) -> list[str]:
    from core.config import TrainConfig
    from core.experiments.record import create_sweep

    other = env.tmp / "other-runs"
    path = create_sweep(TrainConfig(model=str(env.model), dataset=str(env.good)), {"epochs": [1, 2]},
                        [{"epochs": 1}, {"epochs": 2}], other)
    return ["stop", path.stem, "--output-dir", str(other)]


def _sweep_record(env: Env, damage: Callable[[dict], None] | None = None) -> Path:
    """A pending two-point sweep in a runs folder of its own, its record then changed by `damage`."""
    from core.config import TrainConfig
    from core.experiments.record import create_sweep

    path = create_sweep(TrainConfig(model=str(env.model), dataset=str(env.good)), {"epochs": [1, 2]},
                        [{"epochs": 1}, {"epochs": 2}], env.tmp / "other-runs")
    if damage is not None:
        record = json.loads(path.read_text())
        damage(record)
        path.write_text(json.dumps(record))
    return path


def _running_sweep(env: Env, *flags: str) -> list[str]:
    """A sweep whose lock another process holds (as a sweep running in the background does)."""
    from core.experiments.record import worker_lock
    from core.runs.lock import RunLock

    path = _sweep_record(env)
    env.held = RunLock(path=worker_lock(path, "elsewhere-1")).acquire()
    return ["sweep", "--resume", path.stem, "--output-dir", str(path.parent), *flags]


def _done_sweep(env: Env) -> list[str]:
    """A sweep whose every point the study has as finished: a worker joining it has nothing to do."""
    import optuna

    path = _sweep_record(env)
    study = optuna.load_study(study_name="sweep", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path.with_suffix(".journal")))))
    for _ in range(2):
        study.tell(study.ask(), 0.5)
    return ["sweep", "--join", path.stem, "--output-dir", str(path.parent)]


def _earlier_sweep(env: Env, *flags: str) -> list[str]:
    """A record of the format before the study (everything in the JSON file)."""
    root = env.tmp / "other-runs"
    root.mkdir(exist_ok=True)
    (root / "sweep-20261101-000000.json").write_text(json.dumps(
        {"kind": "sweep", "status": "stopped", "base": {}, "points": [{"settings": {"epochs": 1}, "status": "pending"}]}))
    return ["sweep", *flags, "sweep-20261101-000000", "--output-dir", str(root)]


def _study_gone(env: Env) -> list[str]:
    path = _sweep_record(env)
    path.with_suffix(".journal").unlink()
    return ["sweep", "--show", path.stem, "--output-dir", str(path.parent)]


def _log_is_a_folder(env: Env) -> list[str]:
    path = _sweep_record(env)
    path.with_suffix(".log").mkdir()
    return ["sweep", "--resume", path.stem, "--detach", "--output-dir", str(path.parent)]


def _sweep_left_pending(env: Env) -> None:
    from core.experiments.record import read_sweep

    (path,) = (env.tmp / "other-runs").glob("sweep-*.json")
    assert read_sweep(path)["status"] == "pending"  # not "starting" for ever, and its lock is free


def _show_damaged_sweep(damage: Callable[[dict], None]) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        path = _sweep_record(env, damage)
        return ["sweep", "--show", path.stem, "--output-dir", str(path.parent)]
    return setup


def _unparsable_sweep(env: Env) -> list[str]:
    root = env.tmp / "other-runs"
    root.mkdir()
    (root / "sweep-1.json").write_text('{"kind": "sweep", "points": [')
    return ["sweep", "--show", "sweep-1", "--output-dir", str(root)]


def _lr_find(env: Env, *flags: str) -> list[str]:
    return ["lr-find", "--model", str(env.model), "--dataset", str(env.good), "--output-dir", str(env.runs), *flags]


EXPERIMENT_CASES: dict[str, Case] = {
    "sweep without a grid": Case(lambda e: _sweep(e), 2, "say what to vary: --grid learning_rate=2e-5,5e-5"),
    "sweep over the dataset": Case(lambda e: _sweep(e, "dataset=a.csv,b.csv"), 2,
                                   "a sweep keeps the data, its split and its scoring the same"),
    "sweep with a word among the numbers": Case(lambda e: _sweep(e, "learning_rate=2e-5,fast"), 2,
                                                "must be a number, not 'fast'"),
    "sweep over an unknown setting": Case(lambda e: _sweep(e, "learnin_rate=1,2"), 2, "did you mean 'learning_rate'"),
    "sweep with a range but no --random": Case(lambda e: _sweep(e, "learning_rate=1e-5:1e-3"), 2,
                                               "a range is searched with --trials N"),
    "sweep with a point the settings refuse": Case(lambda e: _sweep(e, "epochs=2,0"), 2, "must be at least 1"),
    "show a sweep that does not exist": Case(lambda e: ["sweep", "--show", "sweep-nope", "--output-dir",
                                                        str(e.runs)], 2, "no sweep sweep-nope"),
    "stop a sweep that is not running": Case(_pending_sweep, 2, "is not running (it is pending)"),
    "doctor with one fold": Case(lambda e: ["doctor", str(e.run_copy("one-fold")), "--folds", "1"], 2,
                                 "folds: 1 is out of range: give 2 to 10"),
    "doctor with more folds than it allows": Case(lambda e: ["doctor", str(e.run_copy("many-folds")), "--folds",
                                                             "11"], 2, "folds: 11 is out of range"),
    "lr-find with too few steps": Case(lambda e: ["lr-find", "--model", str(e.model), "--dataset", str(e.good),
                                                  "--steps", "3", "--output-dir", str(e.runs)], 2, "--steps takes 10 to 10000, not 3"),
    "sweep with no values": Case(lambda e: _sweep(e, "learning_rate=,"), 2, "is not name=value,value"),
    "sweep with no setting name": Case(lambda e: _sweep(e, "=1,2"), 2, "'=1,2' is not name=value,value"),
    "sweep over a setting given twice": Case(lambda e: _sweep(e, "epochs=1,2", "epochs=3"), 2,
                                             "epochs: is given twice; put all its values in one --grid epochs"),
    "sweep over how validation is scored": Case(lambda e: _sweep(e, "max_eval_samples=10,20"), 2,
                                                "a sweep keeps the data, its split and its scoring the same"),
    "sweep of too many random points": Case(lambda e: [*_sweep(e, "epochs=1,2"), "--random", "5000"], 2,
                                            "--random N takes 1 to 1000 points, not 5000"),
    "sweep of no random points": Case(lambda e: [*_sweep(e, "epochs=1,2"), "--random", "0"], 2,
                                      "--random N takes 1 to 1000 points, not 0"),
    "sweep grid of thousands of runs": Case(
        lambda e: _sweep(e, "epochs=" + ",".join(map(str, range(1, 41))), "batch_size=" + ",".join(
            map(str, range(1, 41)))), 2, "1600 combinations is more than a sweep runs (1000)"),
    "sweep point longer than the model takes": Case(lambda e: _sweep(e, "max_length=64,600"), 2,
                                                    "takes (512 tokens); use at most 512 (in the sweep point max_length=600)"),
    "resume a sweep that is already running": Case(lambda e: _running_sweep(e), 2,
                                                   "is already running in another process; add a worker"),
    "resume in background a sweep that is already running": Case(
        lambda e: _running_sweep(e, "--detach"), 2, "is already running in another process"),
    "sweep in background whose log is a folder": Case(_log_is_a_folder, 2,
                                                      "cannot start the sweep in the background", _sweep_left_pending),
    "show a sweep with a grid": Case(lambda e: ["sweep", "--show", "sweep-x", "--grid", "epochs=1,2", "--output-dir",
                                                str(e.runs)], 2, "--show uses the sweep's own settings; drop --grid"),
    "resume a sweep with other settings": Case(
        lambda e: ["sweep", "--resume", "sweep-x", "--epochs", "4", "--output-dir", str(e.runs)], 2,
        "--resume uses the sweep's own settings; drop --epochs"),
    "show a sweep whose points are not objects": Case(_show_damaged_sweep(lambda r: r.update(points=[1, 2])), 2,
                                                      "is damaged (point 1 is not an object with its settings)"),
    "show a sweep whose run folder is a number": Case(
        _show_damaged_sweep(lambda r: r["points"][0].update(run_dir=7)), 2, "point 1's run_dir is not a folder name"),
    "show a sweep without base settings": Case(_show_damaged_sweep(lambda r: r.update(base=None)), 2,
                                               "'base' is not an object of settings"),
    "show a sweep whose record is not JSON": Case(_unparsable_sweep, 2,
                                                  "sweep-1.json is not valid JSON; the sweep record is damaged: start the sweep again"),
    "sweep with both --random and --trials": Case(lambda e: [*_sweep(e, "epochs=1,2"), "--random", "3", "--trials",
                                                             "3"], 2, "give one of them"),
    "sweep with no workers": Case(lambda e: [*_sweep(e, "epochs=1,2"), "--workers", "0"], 2,
                                  "--workers takes 1 to 64, not 0"),
    "join a sweep with no point left": Case(_done_sweep, 2, "has no point left for another worker"),
    "join a sweep recorded before the study": Case(lambda e: _earlier_sweep(e, "--join"), 2,
                                                   "recorded by an earlier version of sentitune: no worker can join"),
    "resume a sweep recorded before the study": Case(lambda e: _earlier_sweep(e, "--resume"), 2,
                                                     "recorded by an earlier version of sentitune: it shows, but does "
                                                     "not go on"),
    "show a sweep whose study file is gone": Case(_study_gone, 2, "the sweep's study sweep-"),
    "join and resume a sweep at once": Case(lambda e: ["sweep", "--resume", "sweep-x", "--join", "sweep-x",
                                                       "--output-dir", str(e.runs)], 2, "drop --join"),
    "lr-find to an infinite learning rate": Case(lambda e: _lr_find(e, "--end-lr", "inf"), 2,
                                                 "--end-lr must be a number above 0 and at most 10, not inf"),
    "lr-find from above where it ends": Case(lambda e: _lr_find(e, "--start-lr", "0.5", "--end-lr", "0.1"), 2,
                                             "--start-lr (0.5) must be below --end-lr (0.1)"),
}
