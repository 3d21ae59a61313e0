import json
import threading

import pytest

from core.errors import DatasetError, ModelError
from core.events import (
    EvalCompleted,
    StepLogged,
    TrainingFinished,
    TrainingStarted,
    TrainingStopped,
    read_events,
)
from core.predict import Predictor
from core.runs.layout import RunStatus
from core.runs.store import Run, list_runs
from core.training.train import train


def test_training_learns_and_reports(trained_run):
    result, events = trained_run
    assert result.status == RunStatus.FINISHED
    steps = [e for e in events if isinstance(e, StepLogged)]
    assert steps[0].loss > steps[-1].loss  # the loss falls
    assert steps[-1].step == steps[-1].total_steps
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert started.samples == {"train": 210, "validation": 45, "test": 45} and started.epochs == 3
    validation = [e for e in events if isinstance(e, EvalCompleted) and e.split == "validation"]
    assert [round(e.epoch) for e in validation] == [1, 2, 3]
    baseline = next(e for e in events if isinstance(e, EvalCompleted) and e.split == "baseline")
    test = next(e for e in events if isinstance(e, EvalCompleted) and e.split == "test")
    assert test.metrics["accuracy"] > 0.9 > baseline.metrics["accuracy"]
    assert sum(map(sum, test.confusion_matrix)) == 45
    assert isinstance(events[-1], TrainingFinished)


def test_events_file_rebuilds_what_the_listener_saw(trained_run):
    result, events = trained_run
    on_disk = read_events(result.run_dir / "events.jsonl")
    assert on_disk == events


def test_run_folder_is_complete_and_self_describing(trained_run):
    result, _ = trained_run
    run = Run(result.run_dir)
    record = run.config_record
    assert record["config"]["epochs"] == 3 and record["label_names"] == ["negative", "positive"]
    assert {"torch", "transformers", "datasets"} <= set(record["versions"]) and record["device"].startswith("CPU")
    assert run.status["status"] == RunStatus.FINISHED and run.status["error"] is None
    metrics = run.metrics
    assert len(metrics["validation"]) == 3 and metrics["train_samples_per_second"] > 0
    assert metrics["test"]["n"] == 45 and metrics["baseline"]["n"] == 45
    rows = run.test_predictions()
    assert len(rows) == 45 and {"text", "label", "predicted", "confidence", "probabilities"} <= set(rows[0])
    assert (run.path / "train.log").read_text().strip()
    assert not (run.path / "checkpoints").exists()  # a finished run keeps only its best model
    assert [r.path for r in list_runs(run.path.parent)] == [run.path]
    info = list_runs(run.path.parent)[0]
    assert info.test_accuracy == metrics["test"]["accuracy"] and info.has_model


def test_saved_model_predicts_what_training_saw(trained_run):
    result, _ = trained_run
    rows = Run(result.run_dir).test_predictions()[:10]
    predictor = Predictor(result.run_dir)
    predictions = predictor.predict([r["text"] for r in rows])
    for row, pred in zip(rows, predictions):
        assert pred.label == row["predicted"]
        for name, p in row["probabilities"].items():
            assert pred.probabilities[name] == pytest.approx(p, abs=1e-4)


def test_saved_model_loads_in_a_transformers_pipeline(trained_run):
    from transformers import pipeline

    result, _ = trained_run
    classify = pipeline("text-classification", model=str(result.run_dir / "model"), device="cpu")
    out = classify("wonderful excellent superb")
    assert out[0]["label"] in ("negative", "positive") and 0 <= out[0]["score"] <= 1


def test_stop_event_gives_a_stopped_run_with_a_model(tiny_config, tmp_path):
    stop = threading.Event()
    events = []

    def listen(event):
        events.append(event)
        if isinstance(event, StepLogged) and event.step >= 2:
            stop.set()

    result = train(tiny_config.replace(logging_steps=1), tmp_path, on_event=listen, stop_event=stop)
    assert result.status == RunStatus.STOPPED
    stopped = events[-1]
    assert isinstance(stopped, TrainingStopped) and stopped.test is not None
    assert stopped.step < next(e for e in events if isinstance(e, TrainingStarted)).total_steps
    assert json.loads((result.run_dir / "status.json").read_text())["status"] == RunStatus.STOPPED
    validation = [e for e in events if isinstance(e, EvalCompleted) and e.split == "validation"]
    assert len(validation) == len({e.step for e in validation})  # the stop step is evaluated once
    assert len(Run(result.run_dir).metrics["validation"]) == len(validation)
    assert Predictor(result.run_dir).predict("great")[0].label in ("negative", "positive")


def test_bad_dataset_or_model_creates_no_run_folder(tiny_config, tmp_path):
    with pytest.raises(DatasetError):
        train(tiny_config.replace(dataset=str(tmp_path / "nope.csv")), tmp_path / "runs")
    with pytest.raises(ModelError, match="model folder not found"):
        train(tiny_config.replace(model="./no-such-model"), tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_tokenized_splits_are_cached(tiny_config, tmp_path):
    seen = []
    train(tiny_config.replace(epochs=1, baseline=False), tmp_path, on_event=seen.append)
    train(tiny_config.replace(epochs=1, baseline=False), tmp_path, on_event=seen.append)
    details = [e.detail for e in seen if getattr(e, "stage", None) == "tokenize"]
    assert "tokenized splits cached" in details and "tokenized splits loaded from cache" in details


def test_library_log_captures_nest_across_threads(tmp_path):
    """A model loaded elsewhere (the app's F5) while a run trains must not end the run's capture."""
    import logging
    import threading
    import warnings

    from core.training.logs import capture_library_logs

    inner_done = threading.Event()
    before = logging.getLogger("datasets").propagate, logging.getLogger("py.warnings").propagate
    with capture_library_logs() as outer:
        outer.attach(tmp_path / "train.log")

        def load_elsewhere():
            with capture_library_logs():
                pass
            inner_done.set()

        threading.Thread(target=load_elsewhere).start()
        assert inner_done.wait(10)
        logging.getLogger("transformers").warning("after the other capture ended")
        warnings.warn("a library warning", UserWarning, stacklevel=1)
        assert logging.getLogger("py.warnings").propagate is False
    text = (tmp_path / "train.log").read_text()
    assert "after the other capture ended" in text and "a library warning" in text
    assert (logging.getLogger("datasets").propagate, logging.getLogger("py.warnings").propagate) == before


def test_auto_batch_retries_out_of_memory_in_a_new_run_the_old_one_points_to(tiny_config, tmp_path, monkeypatch):
    import json

    from core.runs.store import list_runs
    from core.training.job import Job
    from core.training.train import train_auto_batch

    real_run = Job.run

    def run_once_out_of_memory(self):
        if self.config.batch_size == 8:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_run(self)

    monkeypatch.setattr(Job, "run", run_once_out_of_memory)
    result = train_auto_batch(tiny_config.replace(epochs=1), tmp_path / "runs")
    assert result.status == "finished"
    runs = {r.status: r for r in list_runs(tmp_path / "runs")}
    assert set(runs) == {"failed", "finished"} and runs["finished"].path == result.run_dir
    failed = json.loads((runs["failed"].path / "status.json").read_text())
    assert failed["retry_run"] == str(result.run_dir) and "out of memory" in failed["error"]
    config = json.loads((result.run_dir / "config.json").read_text())["config"]
    assert (config["batch_size"], config["gradient_accumulation"]) == (4, 2)


def test_a_failed_runs_model_can_be_freed_before_a_retry(tiny_config, tmp_path, monkeypatch):
    """The exception of an out-of-memory run (which the app's worker keeps) must not keep the model alive."""
    import gc
    import weakref

    from core.errors import OutOfMemoryError
    from core.training.job import Job
    from core.training.oom import release_failure
    from core.training.train import train

    refs = []

    def out_of_memory(self):
        refs.append(weakref.ref(self.model))
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Job, "run", out_of_memory)
    with pytest.raises(OutOfMemoryError) as caught:
        train(tiny_config, tmp_path / "runs")
    error = caught.value  # held, as a worker holds its error
    gc.collect()
    assert refs[0]() is not None  # the traceback's frames keep the model
    release_failure(error)
    assert refs[0]() is None


def test_out_of_memory_while_evaluating_halves_the_evaluation_batch(tiny_config, tmp_path, monkeypatch):
    import json

    from transformers import Trainer

    from core.events import TrainingFailed
    from core.runs.store import list_runs
    from core.training.train import train_auto_batch

    real_step = Trainer.prediction_step

    def step(self, *args, **kwargs):
        if self.args.per_device_eval_batch_size > 16:
            raise RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "prediction_step", step)
    events = []
    result = train_auto_batch(tiny_config.replace(epochs=1), tmp_path / "runs", on_event=events.append)
    failed = [e for e in events if isinstance(e, TrainingFailed)]
    assert len(failed) == 1 and failed[0].kind == "oom_eval" and "eval_batch_size 16" in failed[0].message
    config = json.loads((result.run_dir / "config.json").read_text())["config"]
    assert (config["eval_batch_size"], config["batch_size"]) == (16, 8)
    assert sorted(r.status for r in list_runs(tmp_path / "runs")) == ["failed", "finished"]


def test_a_resumed_run_continues_exactly_as_the_uninterrupted_one(tiny_config, tmp_path):
    """Same batches in the same order, same dropout: the losses after the resume match to 1e-4 (on the CPU)."""
    import threading

    from core.events import StepLogged, read_events
    from core.training.train import resume, train

    config = tiny_config.replace(epochs=2, logging_steps=1, baseline=False)
    whole = train(config, tmp_path / "whole")
    stop = threading.Event()

    def stop_after_eleven(event):
        if isinstance(event, StepLogged) and event.step >= 11:
            stop.set()  # mid-epoch: the stop lands on the next step, which is evaluated and checkpointed

    cut = train(config, tmp_path / "cut", on_event=stop_after_eleven, stop_event=stop)
    assert cut.status == "stopped"
    resume(cut.run_dir)

    def losses(run_dir):
        return {e.step: e.loss for e in read_events(run_dir / "events.jsonl") if isinstance(e, StepLogged)}

    a, b = losses(whole.run_dir), losses(cut.run_dir)
    assert max(b) == max(a) and len(a) > 20
    assert all(abs(a[step] - b[step]) < 1e-4 for step in a), [(s, a[s], b[s]) for s in a if abs(a[s] - b[s]) >= 1e-4]
    metrics = [json.loads((r / "metrics.json").read_text())["test"]["accuracy"] for r in (whole.run_dir, cut.run_dir)]
    assert metrics[0] == metrics[1]


def test_a_run_records_where_its_time_went(trained_run):
    """`phases` covers the run: its named stages add up to within 5% of the wall time, and train prints them."""
    from core.events import TrainingFinished
    from core.runs.store import Run
    from core.training.phases import ORDER, phase_line

    result, events = trained_run
    phases = Run(result.run_dir).metrics["phases"]
    named = {k: v for k, v in phases.items() if k in ORDER}
    assert {"data", "model", "tokenize", "baseline", "training", "evaluation", "checkpoints", "test", "save"} <= set(named)
    assert all(v >= 0 for v in named.values())
    assert 0.95 * phases["wall"] <= sum(named.values()) <= phases["wall"] + 1e-3
    finished = next(e for e in events if isinstance(e, TrainingFinished))
    assert finished.phases == phases
    line = phase_line(phases)
    assert line.startswith("time: ") and "training steps" in line and line.endswith(f"total {phases['wall']:.1f}s")
