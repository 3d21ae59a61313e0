"""The learning-rate finder and sweeps: the finder's suggestion trains the tiny model; a sweep runs each
point as a normal run, ranks by validation F1, stops, and resumes with the points not done."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from core.cli import main
from core.experiments.lr_find import LrFinding, find_learning_rate, suggest
from core.experiments.plan import parse_grid, plan_points
from core.experiments.record import create_sweep, ranked, read_sweep
from core.experiments.worker import run_sweep
from core.training.stopping import StoppedEarly


def test_suggest_takes_a_tenth_of_the_lowest_point_beside_the_steepest_fall_and_nothing_from_noise():
    import math

    lrs = [10 ** (-6 + i * 0.1) for i in range(50)]
    # An S-shaped fall, steepest at index 30, lowest at 40; then the loss blows up.
    losses = [1.0 - 0.5 / (1 + math.exp(-(i - 30) / 3)) for i in range(41)]
    losses += [losses[-1] + 0.2 * (i + 1) for i in range(9)]
    assert suggest(lrs, losses) == (lrs[40] / 10, lrs[30], lrs[40])
    assert suggest(lrs, [0.693 + 0.001 * ((-1) ** i) for i in range(50)]) == (None, None, None)  # noise only


def test_the_finders_suggestion_trains_the_tiny_model(tiny_config, tmp_path):
    from core.training.train import train

    runs = tmp_path / "runs"
    finding = find_learning_rate(tiny_config.replace(learning_rate=2e-5), runs, steps=200, start_lr=1e-5)
    assert finding.diverged and finding.learning_rates[0] == pytest.approx(1e-5)
    assert all(b > a for a, b in zip(finding.learning_rates, finding.learning_rates[1:]))
    assert finding.suggested_learning_rate is not None and 2e-4 < finding.suggested_learning_rate < 1e-2
    assert finding.suggested_learning_rate == pytest.approx(finding.lowest_loss_learning_rate / 10)
    record = json.loads(open(finding.record).read())
    assert record["suggested_learning_rate"] == finding.suggested_learning_rate and len(record["losses"]) > 50
    assert not [p for p in runs.iterdir() if p.is_dir() and p.name != ".cache"]  # no run folder, no model saved
    # The learning rate the test found trains; the recipe's 2e-5 does not, in the same epochs.
    found = train(tiny_config.replace(learning_rate=finding.suggested_learning_rate, epochs=8, baseline=False), runs)
    recipe = train(tiny_config.replace(learning_rate=2e-5, epochs=8, baseline=False), runs)
    assert found.test["accuracy"] >= 0.9 > recipe.test["accuracy"]


def test_lr_find_json_ends_with_the_suggestion_and_the_curve(tiny_model, reviews_csv, tmp_path, capsys):
    code = main(["lr-find", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--max-length", "64",
                 "--batch-size", "8", "--steps", "150", "--start-lr", "1e-5", "--output-dir", str(tmp_path), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    last = json.loads(lines[-1])
    assert code == 0 and json.loads(lines[0])["step"] == 1
    assert last["suggested_learning_rate"] > 0 and len(last["curve"]) == len(lines) - 1
    assert set(last["curve"][0]) == {"learning_rate", "loss"} and "lowest smoothed loss" in last["method"]
    assert last["steepest_learning_rate"] > 0


def test_a_stopped_lr_find_keeps_the_curve_so_far_and_json_never_holds_nan(tiny_config, tmp_path, capsys):
    stop = threading.Event()

    def on_step(step, steps, lr, loss):
        if step == 12:
            stop.set()  # as Ctrl+C, or Escape in the app

    finding = find_learning_rate(tiny_config, tmp_path, steps=100, on_step=on_step, stop_event=stop)
    assert finding.stopped and not finding.diverged and len(finding.losses) == 12
    assert len(json.loads(open(finding.record).read())["losses"]) == 12
    blown = finding.to_dict() | {"losses": [1.0, float("nan")], "lowest_loss_learning_rate": float("inf")}
    assert json.loads(json.dumps(LrFinding(**blown).to_dict(), allow_nan=False))["losses"] == [1.0, None]
    stop.set()  # asked before the first step: nothing to show, nothing saved
    with pytest.raises(StoppedEarly):
        find_learning_rate(tiny_config, tmp_path / "none", steps=20, stop_event=stop)
    assert not list((tmp_path / "none").glob("lr-find-*"))


def test_grid_and_random_points():
    grid = parse_grid(["learning_rate=2e-5,5e-5", "epochs=2,3"])
    assert plan_points(grid) == [{"learning_rate": 2e-5, "epochs": 2}, {"learning_rate": 2e-5, "epochs": 3},
                                 {"learning_rate": 5e-5, "epochs": 2}, {"learning_rate": 5e-5, "epochs": 3}]
    drawn = plan_points(parse_grid(["learning-rate=1e-5:1e-3", "batch_size=8:32"]), random_points=20, seed=1)
    assert len(drawn) == 20 and all(1e-5 <= p["learning_rate"] <= 1e-3 and 8 <= p["batch_size"] <= 32 for p in drawn)
    assert min(p["learning_rate"] for p in drawn) < 1e-4  # drawn on a log scale, not crowded at the top
    assert drawn == plan_points(parse_grid(["learning-rate=1e-5:1e-3", "batch_size=8:32"]), random_points=20, seed=1)


def test_a_two_point_sweep_ranks_its_runs_by_validation_f1(tiny_config, tmp_path, capsys):
    code = main(["sweep", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--max-length", "64",
                 "--batch-size", "8", "--epochs", "1", "--grid", "learning_rate=1e-4,5e-3",
                 "--output-dir", str(tmp_path), "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [e["index"] for e in lines if e.get("event") == "SweepPoint"] == [1, 2]
    summary = lines[-1]
    assert summary["status"] == "finished" and summary["varying"] == ["learning_rate"]
    assert summary["best"]["settings"] == {"learning_rate": 5e-3}
    (record_path,) = tmp_path.glob("sweep-*.json")
    assert record_path.with_suffix(".journal").is_file()  # the study: every worker's points and figures
    record = read_sweep(record_path)
    for point in record["points"]:
        config = json.loads((tmp_path / point["run_dir"] / "config.json").read_text())["config"]
        assert config["learning_rate"] == point["settings"]["learning_rate"] and config["epochs"] == 1
    assert ranked(record)[0]["val_f1"] >= ranked(record)[1]["val_f1"]
    assert main(["sweep", "--show", record_path.stem, "--output-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[1].split() == ["learning_rate", "status", "val", "macro-F1", "val", "acc", "test", "acc", "run"]
    assert shown[2].split()[:3] == ["*", "0.005", "finished"] and shown[3].split()[:2] == ["1e-4", "finished"]
    assert main(["sweep", "--resume", record_path.stem, "--output-dir", str(tmp_path)]) == 2
    assert "has nothing to resume: every run in it is done" in capsys.readouterr().err


def test_a_sweep_recorded_before_the_study_still_shows_with_ties_and_folders_gone(tiny_config, tmp_path, capsys):
    """Records of the earlier format (everything in the JSON file, no study) are listed and shown as they were;
    they are not resumed."""
    path = tmp_path / "sweep-20261120-101500.json"
    path.write_text(json.dumps({
        "kind": "sweep", "created": 1.0, "updated": 2.0, "status": "finished", "pid": None,
        "base": tiny_config.to_dict(), "grid": {"learning_rate": [1e-4, 5e-5, 2e-5]}, "random": None,
        "points": [{"settings": {"learning_rate": lr}, "status": "finished", "run_dir": f"gone-{f1}", "val_f1": f1,
                    "val_f1_macro": f1, "val_accuracy": 0.75} for lr, f1 in ((1e-4, 0.8), (5e-5, 0.8), (2e-5, 0.7))],
    }))
    assert main(["sweep", "--show", "20261120-101500", "--output-dir", str(tmp_path)]) == 0  # the timestamp will do
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out[2:5]] == [["=", "1e-4"], ["=", "5e-5"], ["2e-5", "finished"]]
    assert out[2].endswith("gone-0.8 (folder gone)")
    assert out[-1].startswith("= 2 runs tie for best: the sweep cannot tell them apart")
    (tmp_path / "gone-0.7").mkdir()  # a folder put back is no longer shown as gone
    assert not read_sweep(path)["points"][2].get("missing") and read_sweep(path)["points"][0]["missing"]
    assert main(["sweep", "--show", "--output-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("sweep-20261120-101500  finished    3 of 3 runs finished")
    assert main(["sweep", "--resume", path.stem, "--output-dir", str(tmp_path)]) == 2
    assert "recorded by an earlier version of sentitune: it shows, but does not go on" in capsys.readouterr().err


def test_a_stopped_sweep_resumes_with_the_points_not_done(tiny_config, tmp_path):
    config = tiny_config.replace(epochs=1, baseline=False)
    grid = parse_grid(["learning_rate=1e-3,5e-3,2e-3"])
    path = create_sweep(config, grid, plan_points(grid), tmp_path)
    stop = threading.Event()
    started = []

    def on_point(k, n, point):
        started.append(k)
        if k == 2:
            stop.set()  # as Ctrl+C or `sentitune stop SWEEP` while run 2 starts

    record = run_sweep(path, on_point=on_point, stop_event=stop)
    assert record["status"] == "stopped" and started == [1, 2]
    # run 2 was stopped before it trained a step: it is left to do, and its empty folder is not kept
    assert [p["status"] for p in record["points"]] == ["finished", "pending", "pending"]
    assert record["points"][1]["run_dir"] is None
    record = run_sweep(path, on_point=lambda k, n, p: started.append(k))
    assert record["status"] == "finished" and started == [1, 2, 2, 3]
    assert all(p["status"] == "finished" for p in record["points"])
    assert len({p["run_dir"] for p in record["points"]}) == 3


def test_a_worker_killed_mid_point_leaves_it_to_the_next_worker(tiny_config, tmp_path):
    """SIGKILL (out of memory, a machine going down) in the middle of a point: the sweep reads as interrupted, and
    the next worker goes on with that point's own run, from its checkpoint; nothing is lost or trained twice."""
    from core.experiments.launch import spawn_workers

    grid = parse_grid(["learning_rate=1e-3,5e-3"])
    path = create_sweep(tiny_config.replace(epochs=200, baseline=False), grid, plan_points(grid), tmp_path)
    (child,) = spawn_workers(path, [{}])
    try:
        run_dir = _wait_for_checkpoint(path, tmp_path)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    record = read_sweep(path)
    assert record["status"] == "interrupted" and record["workers"] == []
    assert [p["status"] for p in record["points"]] == ["interrupted", "pending"]
    stop, seen = threading.Event(), []

    def on_point(k, n, point):
        seen.append((k, Path(point["run_dir"]).name))
        stop.set()

    record = run_sweep(path, on_point=on_point, stop_event=stop)
    assert seen == [(1, run_dir)]  # the killed point first, in its own run folder
    assert record["status"] == "stopped" and record["points"][0]["status"] == "stopped"
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")] == [run_dir]


def _wait_for_checkpoint(path: Path, root: Path, timeout: float = 120) -> str:
    """The first point's run folder, once a background worker has written a checkpoint in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_dir = read_sweep(path)["points"][0].get("run_dir")
        if run_dir and any((root / Path(run_dir).name / "checkpoints").glob("checkpoint-*")):
            return Path(run_dir).name
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint in time; the worker's log: {path.with_suffix('.log').read_text()[-2000:]}")


def test_a_detached_sweep_runs_in_its_own_process_and_can_be_stopped(tiny_config, tmp_path, capsys):
    args = ["sweep", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--max-length", "64",
            "--epochs", "200", "--grid", "learning_rate=1e-3,5e-3", "--output-dir", str(tmp_path), "--detach"]
    assert main(args) == 0
    assert "started in the background with 1 worker (2 runs in all)" in capsys.readouterr().out
    (path,) = tmp_path.glob("sweep-*.json")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until its first run is training
        record = read_sweep(path)
        run_dir = record["points"][0].get("run_dir")
        if run_dir and (tmp_path / run_dir / "checkpoints").exists() or record["status"] not in ("starting", "running"):
            break
        time.sleep(0.2)
    assert record["status"] == "running" and len(record["workers"]) == 1
    capsys.readouterr()
    for again in (["--detach"], []):  # one copy of a sweep at a time, however it is asked to go on
        assert main(["sweep", "--resume", path.stem, "--output-dir", str(tmp_path), *again]) == 2
        assert "is already running in another process" in capsys.readouterr().err
    assert main(["sweep", "--show", "--output-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path.stem}  running     0 of 2 runs finished")
    assert main(["stop", path.stem, "--output-dir", str(tmp_path)]) == 0
    assert f"asked sweep {path.stem} to stop" in capsys.readouterr().out
    while time.monotonic() < deadline and read_sweep(path)["status"] == "running":
        time.sleep(0.2)
    record = read_sweep(path)
    assert record["status"] == "stopped"
    assert [p["status"] for p in record["points"]] == ["stopped", "pending"]


def test_a_stop_asked_while_a_background_sweep_starts_reaches_it(tiny_config, tmp_path, capsys):
    from core.experiments.launch import start_sweep_detached

    grid = parse_grid(["learning_rate=1e-3,5e-3"])
    path = create_sweep(tiny_config.replace(epochs=1), grid, plan_points(grid), tmp_path)
    start_sweep_detached(path)
    timestamp = path.stem.removeprefix("sweep-")  # the timestamp alone names it, as for --show and --resume
    assert main(["stop", timestamp, "--output-dir", str(tmp_path)]) == 0  # before its process has begun
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and read_sweep(path)["status"] in ("starting", "running"):
        time.sleep(0.2)
    record = read_sweep(path)
    assert record["status"] == "stopped" and [p["status"] for p in record["points"]] == ["pending", "pending"]


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_lr_find_without_a_suggestion_says_what_to_try(tiny_model, reviews_csv, tmp_path, capsys):
    """A range too low to learn anything: no suggestion, and a short sweep offered instead."""
    from core.cli import main

    code = main(["lr-find", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--output-dir",
                 str(tmp_path), "--steps", "10", "--start-lr", "1e-9", "--end-lr", "2e-9"])
    out = capsys.readouterr().out
    assert code == 0 and "no suggestion" in out
    assert "sentitune sweep ... --grid learning_rate=1e-5,3e-5,1e-4" in out


def _span(run_dir: Path) -> tuple[float, float]:
    """When a run's first and last events happened."""
    times = [json.loads(line)["time"] for line in (run_dir / "events.jsonl").read_text().splitlines() if line]
    return min(times), max(times)


def test_two_workers_train_points_at_the_same_time_and_the_study_holds_them_all(tiny_config, tmp_path, capsys):
    """--workers 2 --detach on --trials 4: two background workers, started together, share the points; TPE chooses
    each within its range; runs of the two overlap in time; the study has every point."""
    import optuna

    code = main(["sweep", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--max-length", "64",
                 "--batch-size", "8", "--epochs", "1", "--trials", "4", "--grid", "learning_rate=1e-3:1e-2",
                 "--grid", "batch_size=8,16", "--workers", "2", "--detach", "--output-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert "started in the background with 2 workers" in capsys.readouterr().out
    (path,) = tmp_path.glob("sweep-*.json")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and read_sweep(path)["status"] == "running":
        time.sleep(0.3)
    record = read_sweep(path)
    assert record["status"] == "finished", path.with_suffix(".log").read_text()[-2000:]
    assert path.with_name(f"{path.stem}.worker2.log").is_file()  # the second worker's log
    study = optuna.load_study(study_name="sweep", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path.with_suffix(".journal")))))
    trials = [t for t in study.get_trials() if "point" in t.user_attrs]
    assert sorted(t.user_attrs["point"] for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" and 0 <= t.value <= 1 for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers trained points
    chosen = [(p["settings"]["learning_rate"], p["settings"]["batch_size"]) for p in record["points"]]
    assert len(set(chosen)) == 4  # two workers starting together do not draw the same points
    for point in record["points"]:  # chosen by the sampler, within the grid, and trained with exactly that
        settings = point["settings"]
        assert 1e-3 <= settings["learning_rate"] <= 1e-2 and settings["batch_size"] in (8, 16)
        config = json.loads((Path(point["run_dir"]) / "config.json").read_text())["config"]
        assert (config["learning_rate"], config["batch_size"]) == (settings["learning_rate"], settings["batch_size"])
    spans = [_span(Path(p["run_dir"])) for p in record["points"]]
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])  # overlapped


def test_pruning_stops_a_planted_hopeless_point_within_its_first_epoch(tiny_config, tmp_path, capsys):
    """Two good points finish; the third learns nothing (a learning rate of 1e-8): pruned points are evaluated four
    times an epoch, so behind their median at a quarter epoch, it is stopped there, within its first epoch, ends
    `pruned` with its figures so far, and is listed as such but not ranked; the sweep goes on with the fourth."""
    code = main(["sweep", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--max-length", "64",
                 "--batch-size", "8", "--epochs", "2", "--grid", "learning_rate=5e-3,3e-3,1e-8,4e-3", "--prune",
                 "--workers", "1", "--output-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    (path,) = tmp_path.glob("sweep-*.json")
    record = read_sweep(path)
    assert [p["status"] for p in record["points"]] == ["finished", "finished", "pruned", "finished"]
    grid = parse_grid(["learning_rate=5e-3,3e-3,1e-8,4e-3"])  # a grid's points, in a grid's order, as before the study
    assert [p["settings"] for p in record["points"]] == plan_points(grid)
    pruned = record["points"][2]
    assert "below the median of the sweep's other runs" in pruned["pruned"]
    metrics = json.loads((Path(pruned["run_dir"]) / "metrics.json").read_text())
    assert metrics["validation"] and max(e["epoch"] for e in metrics["validation"]) < 1  # its figures so far
    status = json.loads((Path(pruned["run_dir"]) / "status.json").read_text())
    assert status["status"] == "pruned" and "pruned after epoch 0." in status["error"]
    finished = json.loads((Path(record["points"][0]["run_dir"]) / "metrics.json").read_text())
    assert len(finished["validation"]) >= 8  # four evaluations an epoch, two epochs
    assert sorted(p["settings"]["learning_rate"] for p in ranked(record)) == [3e-3, 4e-3, 5e-3]
    assert main(["sweep", "--show", path.stem, "--output-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "3 of 4 runs finished, 1 pruned" in shown and "pruned: stopped after an evaluation" in shown
    assert any(line.split()[:2] == ["1e-8", "pruned"] for line in shown.splitlines())


def test_the_range_test_takes_fifty_steps_a_decade_by_default():
    from core.experiments.lr_find import STEPS, default_steps

    assert default_steps() == STEPS == 250  # 1e-6 to 0.1
    assert default_steps(1e-5, 1e-3) == 100 and default_steps(1e-7, 10) == 400
    assert default_steps(1e-4, 2e-4) == 100  # never fewer than 100


def test_workers_are_pinned_to_the_freest_gpus_or_share_the_cores(monkeypatch):
    """NVML patched: each worker gets its own GPU, freest first, by UUID (CUDA's and NVML's numbering may
    differ); CUDA_VISIBLE_DEVICES limits them; without a GPU the cores are divided."""
    from core.experiments import launch
    from core.training import gpus, model

    fake = [gpus.Gpu(0, "GPU-a", "H200", 100, 10), gpus.Gpu(1, "GPU-b", "H200", 100, 90),
            gpus.Gpu(2, "GPU-c", "H200", 100, 50)]
    monkeypatch.setattr(gpus, "list_gpus", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert launch.default_workers() == 3
    assert [e["CUDA_VISIBLE_DEVICES"] for e in launch.worker_environments(2)] == ["GPU-b", "GPU-c"]
    assert launch.worker_environments(1) == [{}]  # one worker: its runs pick the freest GPU themselves
    assert launch.worker_environments(2, device="cpu")[0]["OMP_NUM_THREADS"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert launch.visible_gpus() == ["GPU-c", "GPU-a"] and launch.default_workers() == 2
    monkeypatch.setattr(gpus, "list_gpus", lambda: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(model, "cpu_threads", lambda: 16)
    assert launch.default_workers() == 1
    assert launch.worker_environments(4) == [{"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}] * 4


def test_a_worker_whose_gpu_is_busy_leaves_its_point_for_another(tiny_config, tmp_path, monkeypatch):
    from core.training import train as training
    from core.training.gpus import GpuBusyError

    def busy(*args, **kwargs):
        raise GpuBusyError("GPU 0 has 1.0 GB free and the run needs 3.0 GB (alice: python 60.0 GB)")

    monkeypatch.setattr(training, "train", busy)
    grid = parse_grid(["learning_rate=1e-3,5e-3"])
    path = create_sweep(tiny_config, grid, plan_points(grid), tmp_path)
    with pytest.raises(GpuBusyError):
        run_sweep(path)
    record = read_sweep(path)
    assert [p["status"] for p in record["points"]] == ["pending", "pending"] and record["status"] == "pending"
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]  # no half-made run


def test_lr_find_with_a_suggestion_offers_a_sweep_from_it_up(tiny_config, tmp_path, capsys, monkeypatch):
    from core.experiments import lr_find

    rates = [1e-6 * 10 ** (i / 10) for i in range(40)]
    found = LrFinding(rates, [0.7] * 40, [0.7] * 40, 1.9e-5, 1e-4, 1.9e-4, lr_find.METHOD, False, 1.0)
    monkeypatch.setattr(lr_find, "find_learning_rate", lambda *a, **k: found)
    assert main(["lr-find", "--model", tiny_config.model, "--dataset", tiny_config.dataset,
                 "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "suggested learning rate: 1.9e-5" in out and "--learning-rate 1.9e-5" in out
    assert "sentitune sweep ... --grid learning_rate=1.9e-5,5.7e-5,1.9e-4" in out


def test_pruned_points_report_at_quarter_epochs_whatever_their_batch_size(tiny_config):
    """A point of 22 steps an epoch evaluates every 6 steps (epochs 0.27, 0.55...), one of 44 every 11 (0.25,
    0.5...): both report at study steps 25, 50, ..., so the pruner compares them after as much data."""
    from core.experiments import study
    from core.experiments.worker import _evaluated_often

    assert _evaluated_often(tiny_config.replace(batch_size=32), 700).eval_steps == 6
    assert _evaluated_often(tiny_config.replace(batch_size=16, early_stopping_patience=2), 700).eval_steps == 11
    assert _evaluated_often(tiny_config.replace(early_stopping_patience=2), 700).early_stopping_patience == 8
    assert [study.report_step(6 * k / 22, 4) for k in range(1, 5)] == [25, 50, 75, 100]
    assert [study.report_step(11 * k / 44, 4) for k in range(1, 5)] == [25, 50, 75, 100]
    assert study.report_step(2.0) == 200 and study.report_step(1.5) == 150
