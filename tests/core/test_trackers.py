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


def test_what_a_tracker_prints_goes_to_the_run_log_and_it_is_not_restarted_after_training(tmp_path, capsys):
    import sys
    from types import SimpleNamespace

    from transformers import TrainerCallback

    from core.training.trackers import quiet_trackers

    class TrackioCallback(TrainerCallback):  # named as transformers names it; prints as trackio does
        def __init__(self):
            self.calls = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.calls.append("begin")
            print("* Trackio project initialized: sentitune")

        def on_log(self, args, state, control, **kwargs):
            self.calls.append("log")
            print("warning: slow disk", file=sys.stderr)

        def on_train_end(self, args, state, control, **kwargs):
            self.calls.append("end")
            print("* Run finished. Uploading logs to Trackio (please wait...)")

    tracker, other = TrackioCallback(), TrainerCallback()
    trainer = SimpleNamespace(callback_handler=SimpleNamespace(callbacks=[other, tracker]))
    log = tmp_path / "train.log"
    quiet_trackers(trainer, log)
    wrapped = trainer.callback_handler.callbacks
    assert wrapped[0] is other and wrapped[1] is not tracker
    for event in ("on_train_begin", "on_log", "on_train_end", "on_log", "on_evaluate"):
        getattr(wrapped[1], event)(None, None, None)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert tracker.calls == ["begin", "log", "end"]  # the test scoring's logs do not start a second run
    text = log.read_text()
    assert "project initialized" in text and "slow disk" in text and "Run finished" in text
