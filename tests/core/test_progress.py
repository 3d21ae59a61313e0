from core.events import EvalCompleted, StageChanged, StepLogged, TrainingFailed, TrainingStopped
from core.runs.progress import RunProgress


def _step(step, loss):
    return StepLogged(step=step, total_steps=10, epoch=step / 5, loss=loss, learning_rate=1e-5, grad_norm=1.0,
                      samples_per_second=10.0, elapsed=step, eta=10 - step)


def test_progress_rebuilt_from_a_finished_run_matches_live(trained_run):
    result, events = trained_run
    live = RunProgress()
    for e in events:
        live.apply(e)
    from core.events import read_events

    replay = RunProgress.from_events(read_events(result.run_dir / "events.jsonl"))
    assert replay.status == live.status == "finished"
    assert replay.train_loss == live.train_loss and len(replay.validation) == 3
    assert replay.test.metrics == live.test.metrics and replay.baseline is not None
    assert replay.fraction == 1.0 and replay.run_dir == str(result.run_dir)


def test_progress_follows_steps_evals_and_endings():
    p = RunProgress()
    assert p.status == "idle" and p.fraction == 0
    p.apply(StageChanged("train", "training"))
    p.apply(_step(5, 0.7))
    p.apply(EvalCompleted(split="validation", step=5, epoch=1.0, metrics={"accuracy": 0.8, "loss": 0.5},
                          confusion_matrix=[[1, 0], [0, 1]], label_names=["n", "p"]))
    assert p.status == "running" and p.fraction == 0.5 and p.validation_loss == [(5, 0.5)]
    assert p.latest_eval.metrics["accuracy"] == 0.8
    p.apply(TrainingStopped(run_dir="r", step=5, test=None))
    assert p.done and p.status == "stopped"
    q = RunProgress()
    q.apply(TrainingFailed(run_dir="r", title="Training failed", message="out of memory"))
    assert q.status == "failed" and q.error.message == "out of memory" and "failed: out of memory" in q.log


def test_elapsed_time_carries_on_across_a_resume():
    from core.events import Resumed, StepLogged
    from core.runs.progress import RunProgress

    def step(n, elapsed):
        return StepLogged(step=n, total_steps=20, epoch=n / 10, loss=0.5, learning_rate=1e-5, grad_norm=1.0,
                          samples_per_second=10.0, elapsed=elapsed, eta=1.0)

    progress = RunProgress.from_events([step(5, 50.0), step(10, 100.0), Resumed(step=10, checkpoint="c-10")])
    assert progress.elapsed == 100.0  # nothing new yet: the time before the resume
    progress.apply(step(12, 20.0))  # the new process counts from 0
    assert progress.elapsed == 120.0
