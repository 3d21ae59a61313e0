"""Deterministic run folders for screen tests and snapshots (fixed names, times and metrics)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.config import TrainConfig
from core.events import (
    CheckpointSaved,
    EvalCompleted,
    StageChanged,
    StepLogged,
    TrainingFinished,
    TrainingStarted,
)
from core.runs.lock import RunLock
from core.training.metrics import evaluate_predictions

T0 = 1_790_000_000.0  # a fixed creation time
_LIVE_LOCKS: list = []
NAMES = ["negative", "positive"]


def _report(correct_neg: int, wrong_neg: int, correct_pos: int, wrong_pos: int) -> dict:
    y_true = [0] * (correct_neg + wrong_neg) + [1] * (correct_pos + wrong_pos)
    y_pred = [0] * correct_neg + [1] * wrong_neg + [1] * correct_pos + [0] * wrong_pos
    return evaluate_predictions(y_true, y_pred, NAMES)


def fake_events(run_dir: str, epochs: int = 3, steps_per_epoch: int = 20, quality: float = 0.0, finish: bool = True):
    """A plausible, fully deterministic event history."""
    total = epochs * steps_per_epoch
    t = T0
    events = [
        StageChanged("data", "text column auto-detected: text", time=t),
        StageChanged("baseline", "scoring the untuned model on the test split", time=t + 1),
        EvalCompleted(split="baseline", step=0, epoch=0.0, metrics={"accuracy": 0.5, "f1": 0.66, "loss": 0.69},
                      confusion_matrix=[[0, 30], [0, 30]], label_names=NAMES, time=t + 2),
        TrainingStarted(run_dir=run_dir, model="tiny", dataset="reviews.csv", device="CPU (2 threads)",
                        precision="fp32", epochs=epochs, total_steps=total, steps_per_epoch=steps_per_epoch,
                        effective_batch=16, samples={"train": 280, "validation": 60, "test": 60},
                        label_names=NAMES, time=t + 3),
        StageChanged("train", "training", time=t + 3),
    ]
    for step in range(2, total + 1, 2):
        loss = 0.7 * (1 - step / (total * 1.3)) - quality * step / total * 0.1
        events.append(StepLogged(step=step, total_steps=total, epoch=step / steps_per_epoch, loss=round(loss, 4),
                                 learning_rate=2e-5 * (1 - step / total), grad_norm=1.0, samples_per_second=32.0,
                                 elapsed=step * 0.5, eta=(total - step) * 0.5, time=t + 3 + step * 0.5))
        if step % steps_per_epoch == 0:
            epoch = step // steps_per_epoch
            acc = round(0.6 + 0.1 * epoch + quality, 4)
            events.append(EvalCompleted(
                split="validation", step=step, epoch=float(epoch),
                metrics={"accuracy": acc, "precision": acc, "recall": acc, "f1": acc, "loss": round(0.6 - 0.1 * epoch, 4)},
                confusion_matrix=[[20 + epoch, 10 - epoch], [10 - epoch, 20 + epoch]], label_names=NAMES,
                time=t + 3 + step * 0.5))
            events.append(CheckpointSaved(step=step, epoch=float(epoch), path=f"{run_dir}/checkpoints/checkpoint-{step}",
                                          time=t + 3 + step * 0.5))
    if finish:
        test = _report(26, 4, 25, 5)
        events.append(EvalCompleted(split="test", step=total, epoch=float(epochs),
                                    metrics={k: v for k, v in test.items() if isinstance(v, float)} | {"loss": 0.4},
                                    confusion_matrix=test["confusion_matrix"], label_names=NAMES, time=t + 100))
        events.append(TrainingFinished(run_dir=run_dir, test={k: test[k] for k in ("accuracy", "f1")},
                                       train_runtime=60.0, train_samples_per_second=32.0, time=t + 101))
    return events


def write_fake_run(root: Path, name: str, *, model_dir: Path | None = None, status: str = "finished",
                   config: TrainConfig | None = None, quality: float = 0.0, created: float = T0) -> Path:
    """A complete run folder; copies `model_dir` in as its model when given."""
    run = root / name
    run.mkdir(parents=True)
    config = config or TrainConfig(model="tiny", dataset="reviews.csv", epochs=3)
    events = fake_events(str(run), epochs=config.epochs, quality=quality, finish=status == "finished")
    (run / "events.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events))
    (run / "config.json").write_text(json.dumps({
        "config": config.to_dict(), "created": created, "device": "CPU (2 threads)", "precision": "fp32",
        "versions": {"torch": "x", "transformers": "x", "datasets": "x"}, "label_names": NAMES,
        "samples": {"train": 280, "validation": 60, "test": 60},
    }))
    (run / "status.json").write_text(json.dumps({"status": status, "error": None, "updated": created, "pid": None}))
    if status == "running":  # a live run holds its lock; keep it for the rest of the test session
        _LIVE_LOCKS.append(RunLock(run).acquire())
    validation = [
        {"step": e.step, "epoch": e.epoch, **e.metrics} for e in events
        if isinstance(e, EvalCompleted) and e.split == "validation"
    ]
    test = _report(26, 4, 25, 5) | {"loss": 0.4}
    baseline = _report(0, 30, 30, 0) | {"loss": 0.69}
    if status == "finished":
        (run / "metrics.json").write_text(json.dumps({
            "validation": validation, "test": test, "baseline": baseline,
            "train_runtime": 60.0, "train_samples_per_second": 32.0, "global_step": 60,
        }))
        rows = []
        texts = [f"review number {i} was {'great' if i % 2 else 'awful'}" for i in range(60)]
        for i, text in enumerate(texts):
            truth = NAMES[i % 2]
            wrong = i % 7 == 0
            conf = 0.5 + (i % 10) / 20.5
            pred = NAMES[1 - i % 2] if wrong else truth
            rows.append({"text": text, "label": truth, "predicted": pred, "confidence": conf, "correct": not wrong,
                         "probabilities": {pred: conf, NAMES[1 - NAMES.index(pred)]: 1 - conf}})
        (run / "test_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if model_dir is not None:
            shutil.copytree(model_dir, run / "model")
    return run


def fixed_explanation(text: str, predictor=None):
    """A core.explain.Explanation with fixed scores (sentiment words count, the rest a little), for snapshots:
    the tiny model's real scores move a little from one training session to the next."""
    from core.explain import Explanation, WordScore
    from core.predict import Prediction

    if predictor is not None:
        prediction = predictor.predict([text])[0]
    else:
        prediction = Prediction(text, "negative", 0.9, {"negative": 0.9, "positive": 0.1})
    strong = {"awful": 0.9, "dull": 0.4, "delight": 0.7, "wonderful": 0.5, "great": -0.6, "loved": -0.5}
    words = [WordScore(w, strong.get(w.strip(".,:!").lower(), -0.05), spaced=i > 0, position=i + 1)
             for i, w in enumerate(text.split())]
    return Explanation(prediction, words, 0.001, 32, False)
