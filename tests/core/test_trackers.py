"""Experiment trackers on request: TensorBoard event files in the run folder; a tracker not installed is bad input."""

import importlib.util


def test_report_to_tensorboard_writes_event_files_in_the_run_folder(tiny_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from core.training.train import train

    run = train(tiny_config.replace(epochs=1, logging_steps=2, baseline=False, report_to="tensorboard"), tmp_path)
    files = list((run.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert files and not (run.run_dir / "checkpoints").exists()
    events = EventAccumulator(str(run.run_dir / "tensorboard"))
    events.Reload()
    assert "train/loss" in events.Tags()["scalars"] and "eval/f1" in events.Tags()["scalars"]


def test_a_tracker_that_is_not_installed_is_refused_before_anything_starts(tiny_model, reviews_csv, tmp_path,
                                                                           monkeypatch, capsys):
    from core.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    code = main(["train", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--report-to", "trackio",
                 "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'sentitune[trackio]'" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
