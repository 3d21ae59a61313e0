"""The coach: each diagnostic from an event stream built to trigger it, and from real runs; none on a healthy run."""

import json
import shutil

import pytest

from core.events import Diagnostic, EvalCompleted, StepLogged, TrainingStarted, read_events
from core.training.coach import Coach, data_diagnostics
from tests.tiny import reviews_frame


def _step(step, loss):
    return StepLogged(step=step, total_steps=100, epoch=step / 50, loss=loss, learning_rate=1e-3, grad_norm=1.0,
                      samples_per_second=10.0, elapsed=1.0, eta=1.0)


def _eval(step, loss=0.5, matrix=((40, 10), (10, 40)), split="validation", accuracy=0.8, f1=0.8):
    return EvalCompleted(split=split, step=step, epoch=step / 50, metrics={"loss": loss, "accuracy": accuracy, "f1": f1},
                         confusion_matrix=[list(r) for r in matrix], label_names=["negative", "positive"])


def _kinds(events) -> list[str]:
    coach = Coach()
    return [d.kind for e in events for d in coach.observe(e)]


def _started():
    return TrainingStarted(run_dir="r", model="m", dataset="d", device="cpu", precision="fp32", epochs=2,
                           total_steps=100, steps_per_epoch=50, effective_batch=8, samples={}, label_names=[],
                           per_device_batch=8, processes=1, gradient_accumulation=1)


def test_a_healthy_stream_raises_nothing():
    events = [_started(), *[_step(s, 0.7 * 0.97 ** s) for s in range(2, 50, 2)], _eval(50, 0.4),
              *[_step(s, 0.2) for s in range(52, 100, 2)], _eval(100, 0.35)]
    assert _kinds(events) == []


@pytest.mark.parametrize("kind,events", [
    ("nan_loss", [_started(), _step(2, 0.7), _step(4, float("nan"))]),
    ("diverging", [_started(), *[_step(s, 0.7) for s in (2, 4, 6)], *[_step(s, 1.2) for s in (8, 10, 12)]]),
    ("loss_flat", [_started(), *[_step(s, 0.69) for s in range(2, 60, 2)]]),
    ("collapsed_predictions", [_started(), _eval(50, matrix=((1, 49), (0, 50)))]),
    ("overfitting", [_started(), _step(40, 0.5), _eval(50, 0.40), _step(90, 0.3), _eval(100, 0.45), _step(140, 0.1),
                     _eval(150, 0.55)]),
    ("worse_than_baseline", [_eval(0, split="baseline", accuracy=0.6, f1=0.6),
                             _eval(100, split="test", accuracy=0.5, f1=0.4)]),
])
def test_each_kind_fires_once_from_a_stream_built_for_it(kind, events):
    kinds = _kinds([*events, *events[1:]])  # the same trouble again does not repeat the diagnostic
    assert kinds.count(kind) == 1


def test_a_flat_loss_advises_from_the_runs_own_learning_rate():
    flat = [_started(), *[_step(s, 0.69) for s in range(2, 60, 2)]]
    coach = Coach(learning_rate=5e-5)
    (advice,) = [d.advice for e in [*flat, *flat[1:]] for d in coach.observe(e)]
    assert "(5e-5) may be too low (try 1.5e-4 or 5e-4)" in advice and "lr-find" in advice
    assert "try 5e-5" not in advice  # never the rate the run already has


def test_the_data_checks_name_truncation_and_imbalance():
    found = data_diagnostics([64] * 30 + [20] * 70, 64, [1] * 80 + [0] * 20, ["negative", "positive"])
    assert [d.kind for d in found] == ["truncation", "imbalance"]
    assert "30%" in found[0].message and "'positive' is 80%" in found[1].message
    assert data_diagnostics([20] * 100, 64, [0, 1] * 50, ["negative", "positive"]) == []


def _diagnostics(run_dir) -> list[Diagnostic]:
    return [e for e in read_events(run_dir / "events.jsonl") if isinstance(e, Diagnostic)]


def test_no_diagnostic_on_a_healthy_run_of_the_recipe(trained_run):
    found = _diagnostics(trained_run[0].run_dir)
    # The tiny test model is trained from scratch at 5e-3: high for fine-tuning, so said once, before training.
    assert [(d.kind, d.step) for d in found] == [("high_learning_rate", 0)]
    assert "fine-tuning, which usually uses 1e-5 to 1e-4" in found[0].message


def test_a_learning_rate_above_1e_3_is_a_warning():
    from core.training.coach import learning_rate_warning, settings_diagnostics

    assert learning_rate_warning(1e-3) is None and settings_diagnostics(5e-5) == []
    assert learning_rate_warning(1.0) == ("1 is high for fine-tuning, which usually uses 1e-5 to 1e-4 (above 0.001 "
                                          "the loss often explodes)")


@pytest.mark.parametrize("change,kinds", [
    ({"learning_rate": 1e-8, "epochs": 2}, {"loss_flat", "collapsed_predictions"}),  # the untrained head answers one class
    ({"learning_rate": 1.0, "epochs": 3}, {"diverging"}),
])
def test_a_run_built_to_go_wrong_is_diagnosed(tiny_config, tmp_path, change, kinds):
    from core.training.train import train

    run = train(tiny_config.replace(**{"epochs": 1, "logging_steps": 2, "baseline": False, **change}), tmp_path).run_dir
    assert kinds <= {d.kind for d in _diagnostics(run)}


def test_cut_and_skewed_data_is_diagnosed_before_training(tiny_model, tmp_path):
    from core.config import TrainConfig
    from core.training.train import train

    frame = reviews_frame(200)
    skewed = frame[(frame.label == "positive") | (frame.index < 40)]  # 20 negative, 100 positive
    skewed.to_csv(tmp_path / "skewed.csv", index=False)
    config = TrainConfig(model=str(tiny_model), dataset=str(tmp_path / "skewed.csv"), epochs=1, batch_size=8,
                         max_length=8, baseline=False)
    found = _diagnostics(train(config, tmp_path / "runs").run_dir)
    assert {"truncation", "imbalance"} <= {d.kind for d in found}
    assert all(d.step == 0 for d in found if d.kind in ("truncation", "imbalance"))


def test_a_nan_loss_fails_the_run_with_advice_and_saves_no_model(tiny_model, tiny_config, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from core.errors import TrainingError
    from core.training.train import train

    poisoned = tmp_path / "poisoned"
    shutil.copytree(tiny_model, poisoned)
    model = AutoModelForSequenceClassification.from_pretrained(poisoned)
    with torch.no_grad():
        model.get_input_embeddings().weight.fill_(float("nan"))
    model.save_pretrained(poisoned)
    with pytest.raises(TrainingError, match="NaN"):
        train(tiny_config.replace(model=str(poisoned), epochs=1, logging_steps=1, baseline=False), tmp_path / "runs")
    run = next(p for p in (tmp_path / "runs").iterdir() if (p / "status.json").exists())
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "learning rate 10x lower" in status["error"]
    kinds = [d.kind for d in _diagnostics(run) if d.kind != "high_learning_rate"]  # the tiny model's 5e-3
    assert kinds[0] == "nan_loss" and not (run / "model").exists()


def test_the_cli_prints_what_the_coach_says(tiny_model, reviews_csv, tmp_path, capsys):
    from core.cli import main

    assert main(["train", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--epochs", "1",
                 "--learning-rate", "1e-8", "--max-length", "8", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "coach (truncation): " in out and "Raise max_length" in out


def test_a_resumed_run_is_judged_against_its_start_not_against_its_own_late_losses():
    """Fed the earlier segment first (as a resumed Job feeds it), the coach sees a small rise late in training
    for what it is; started afresh at the resume, the same losses read as a loss that grew by half."""
    from core.events import Resumed

    earlier = [_started(), *[_step(s, 0.7 * 0.95 ** s) for s in range(2, 62, 2)]]
    later = [Resumed(step=50, checkpoint="checkpoint-50"), *[_step(s, v) for s, v in
                                                            zip(range(52, 76, 2), [0.05, 0.05, 0.05, 0.06, 0.07, 0.08,
                                                                                   0.09, 0.09, 0.09, 0.09, 0.09, 0.09])]]
    assert "diverging" in _kinds(later)  # what a coach that starts again at the resume says
    assert "diverging" not in _kinds(earlier + later)


def test_a_resume_forgets_the_nan_of_the_steps_it_goes_back_before():
    from core.events import Resumed

    coach = Coach()
    for event in [_started(), _step(2, 0.7), _step(4, float("nan"))]:
        coach.observe(event)
    assert coach.nan_step == 4
    coach.observe(Resumed(step=2, checkpoint="checkpoint-2"))
    assert coach.nan_step is None and coach.losses == [(2, 0.7)]


def _started_with_labels(names=("negative", "positive")):
    from dataclasses import replace

    return replace(_started(), label_names=list(names))


def test_a_loss_that_explodes_in_the_first_steps_is_diverging():
    coach = Coach(learning_rate=1.0)
    found = [d for e in [_started_with_labels(), _step(2, 0.69), _step(4, 101.0), _step(6, 188.0)]
             for d in coach.observe(e)]
    assert [d.kind for d in found] == ["diverging"]
    assert found[0].message == "the training loss rose from 0.693 to 96.563"  # from log(2)


def test_noisy_or_confidently_wrong_starts_are_not_diverging():
    noisy = [0.45, 0.72, 0.68, 0.70, 0.66, 0.71, 0.69, 0.67, 0.6, 0.55]  # one lucky first batch
    assert _kinds([_started_with_labels(), *[_step(2 * i + 2, x) for i, x in enumerate(noisy)]]) == []
    falling = [2.5, 2.2, 1.9, 1.5, 1.2, 0.9, 0.7, 0.6]  # a head trained for other labels: above log(2), falling
    assert _kinds([_started_with_labels(), *[_step(2 * i + 2, x) for i, x in enumerate(falling)]]) == []
