"""The training dashboard: a real (tiny) run through the UI, Stop & save, quitting, failures."""

import dataclasses

from textual.widgets import Button, ProgressBar, RichLog, Static

from core.events import StepLogged
from core.runs.store import list_runs
from tests.tui.waiting import until, wait_for
from tui.screens.modals import ConfirmModal, ErrorModal
from tui.screens.train_screen import TrainScreen


def _text(screen, selector) -> str:
    """What a Static shows, as plain text (rendered when it holds Rich renderables)."""
    import io

    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(screen.query_one(selector, Static).content)
    return console.export_text().strip()


async def test_full_run_through_the_ui_reaches_finished(make_app, runs_root):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        assert "No run yet" in _text(screen, "#status-line")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("enter")  # Enter starts in this dialog
        await wait_for(pilot, lambda: app.training or app.progress.status == "finished")
        await app.workers.wait_for_complete()
        await wait_for(pilot, lambda: _text(screen, "#status-line") == "Finished")  # throttled redraw
        assert app.progress.status == "finished"
        bar = screen.query_one("#steps", ProgressBar)
        assert bar.progress == bar.total == app.progress.total_steps
        latest = _text(screen, "#latest")
        assert "Test (final model)" in latest and "vs untuned: acc" in latest and "F1" in latest.split("vs untuned")[1]
        assert any("test: accuracy" in str(line) for line in screen.query_one("#log", RichLog).lines)
        # the buttons follow the worker's end, which the next redraw picks up
        await wait_for(pilot, lambda: screen.query_one("#stop", Button).disabled)
        assert not screen.query_one("#start", Button).disabled
        assert "last run finished" in app.sub_title
    runs = list_runs(runs_root)
    assert len(runs) == 1 and runs[0].status == "finished"


async def test_stop_and_save_gives_a_stopped_run(make_app, runs_root, tiny_config):
    app = make_app(tiny_config.replace(epochs=40, logging_steps=1, baseline=False))
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await wait_for(pilot, lambda: isinstance(app.progress.last_step, StepLogged))
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and bool(app.screen.query("#yes")))
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await wait_for(pilot, lambda: _text(app.screen, "#status-line").startswith("Stopped"))
        assert app.progress.status == "stopped"
        assert app.progress.step < app.progress.started.total_steps
        # core's wording of the stop: stopped during training, the model is saved and tested
        assert app.progress.stopped.saved and app.progress.stopped.test
        assert _text(app.screen, "#status-line") == f"Stopped at step {app.progress.stopped.step}; model saved"
    run = list_runs(runs_root)[0]
    assert run.status == "stopped" and run.has_model


async def test_cancelled_confirmation_keeps_training(make_app, tiny_config):
    app = make_app(tiny_config.replace(epochs=40, logging_steps=1, baseline=False))
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await wait_for(pilot, lambda: isinstance(app.progress.last_step, StepLogged))
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and bool(app.screen.query("#yes")))
        await pilot.press("escape")
        await pilot.pause()
        assert not app.live.stop_event.is_set() and app.training
        app.stop_now()
        await app.workers.wait_for_complete()


async def test_leaving_the_dashboard_does_not_stop_training(make_app, tiny_config):
    app = make_app(tiny_config.replace(epochs=6, baseline=False))
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await pilot.press("f1")
        await pilot.press("f4")
        await app.workers.wait_for_complete()
        assert app.progress.status == "finished"


async def test_quit_while_training_asks_then_stops_cleanly(make_app, runs_root, tiny_config):
    app = make_app(tiny_config.replace(epochs=40, logging_steps=1, baseline=False))
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await wait_for(pilot, lambda: isinstance(app.progress.last_step, StepLogged))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and bool(app.screen.query("#yes")))
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await until(lambda: not app.is_running)
    assert list_runs(runs_root)[0].status == "stopped"
    assert not app.is_running


async def test_out_of_memory_offers_a_retry_at_half_the_batch(make_app, runs_root, monkeypatch):
    import gc
    import weakref

    import core.training.job

    models = []

    def boom(self):
        models.append(weakref.ref(self.model))
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(core.training.job.Job, "run", boom)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and bool(app.screen.query("#yes")))
        assert "batch_size 4" in app.screen.question and "gradient_accumulation 2" in app.screen.question
        assert app.screen.yes == "Retry with batch 4 x 2"
        await wait_for(pilot, lambda: not app.training)
        # the failed attempt's model is freed before the retry (when the worker's end is handled)
        await wait_for(pilot, lambda: gc.collect() >= 0 and models[0]() is None, timeout=20)
        await pilot.press("y")  # retry: a second run with the same effective batch
        await wait_for(pilot, lambda: app.config.batch_size == 4 and not app.training)
        assert app.config.gradient_accumulation == 2
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and bool(app.screen.query("#yes")))  # it fails again here (patched)
        await pilot.press("escape")
        await wait_for(pilot, lambda: _text(app.screen, "#status-line").startswith(
            "Failed: the GPU ran out of memory at batch_size 4"))
        assert app.progress.status == "failed"
    runs = list_runs(runs_root)
    assert len(runs) == 2 and all(r.status == "failed" and "out of memory" in r.error for r in runs)


async def test_other_failures_open_an_error_modal(make_app, runs_root, monkeypatch):
    import core.training.job

    def boom(self):
        raise ValueError("loss became NaN")

    monkeypatch.setattr(core.training.job.Job, "run", boom)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "ValueError: loss became NaN" in app.screen.message
    assert list_runs(runs_root)[0].status == "failed"


async def test_bad_dataset_is_a_notification_and_loses_nothing(make_app, runs_root, tiny_config, tmp_path):
    app = make_app(tiny_config.replace(dataset=str(tmp_path / "missing.csv")))
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training()
        await wait_for(pilot, lambda: not app.training)
        await pilot.pause()
        assert not isinstance(app.screen, ErrorModal)
        assert any("dataset file not found" in n.message for n in app.seen_notifications)
        assert app.progress.status == "idle" and app.config.dataset.endswith("missing.csv")
    assert list_runs(runs_root) == []


async def test_dashboard_rebuilds_from_events_file(make_app, trained_run):
    """A dashboard fed only by events.jsonl shows the same history (what re-attaching builds on)."""
    from core.events import read_events
    from core.runs.progress import RunProgress

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.progress = RunProgress.from_events(read_events(trained_run[0].run_dir / "events.jsonl"))
        app.progress_version += 1
        await pilot.press("f3")
        await wait_for(pilot, lambda: _text(app.screen, "#status-line") == "Finished")
        assert app.screen.query_one("#steps", ProgressBar).progress == app.progress.total_steps


def test_dashboard_snapshot(snap_compare, make_app, runs_root):
    from core.events import read_events
    from core.runs.progress import RunProgress
    from tests.tui.fake_runs import write_fake_run

    run = write_fake_run(runs_root, "20260101-120000-tiny-reviews")

    async def show(pilot):
        app = pilot.app
        events = read_events(run / "events.jsonl")
        # fake runs name their folder by absolute path; keep the snapshot path-free
        events = [dataclasses.replace(e, run_dir="runs/20260101-120000-tiny-reviews") if hasattr(e, "run_dir") else e
                  for e in events]
        app.progress = RunProgress.from_events(events)
        app.progress_version += 1
        await pilot.press("f3")
        await wait_for(pilot, lambda: _text(app.screen, "#status-line") == "Finished")  # a throttled redraw away

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=show)


async def test_dashboard_words_a_stop_as_core_does(make_app):
    """A stop before training saves nothing; one while testing saves an untested model; old events lack `saved`."""
    from core.events import StageChanged, TrainingStopped
    from tui.messages import TrainingEvent

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        screen = app.screen
        cases = [
            (TrainingStopped(run_dir="runs/x", step=0, test=None, saved=False),
             "Stopped before training began; no model saved"),
            (TrainingStopped(run_dir="runs/x", step=60, test=None, saved=True),
             "Stopped at step 60; model saved (not tested)"),
            (TrainingStopped(run_dir="runs/x", step=60, test={"accuracy": 0.9}, saved=None),  # an old events file
             "Stopped at step 60; model saved"),
        ]
        for stop, wording in cases:
            app.progress = type(app.progress)()
            app.post_message(TrainingEvent(StageChanged("data", "reading reviews.csv")))
            app.post_message(TrainingEvent(stop))
            await wait_for(pilot, lambda wording=wording: _text(screen, "#status-line") == wording)
            assert any(n.message == f"{wording}." for n in app.seen_notifications)
            app.clear_notifications()


async def test_a_short_chart_names_its_series_in_the_title_instead_of_a_legend_over_the_lines():
    import re

    from textual.app import App

    from tui.widgets.curves import CurvesPlot, Series

    class Host(App):
        def compose(self):
            yield CurvesPlot("loss", "step")

    series = [Series("train", [(1, 0.74), (2, 0.70), (3, 0.60)]), Series("validation", [(3, 0.65)])]
    flat = [Series("accuracy", [(1, 1.0)]), Series("F1", [(1, 1.0)])]  # one value: no range to divide by
    for height, legend in ((10, False), (24, True)):
        async with Host().run_test(size=(60, height)) as pilot:
            chart = pilot.app.query_one(CurvesPlot)
            chart.show(series)
            await pilot.pause()
            chart.render()
            drawn = re.sub(r"\x1b\[[0-9;]*m", "", chart.plt.build())
            title = drawn.splitlines()[0]
            assert ("train, validation" in title) is not legend
            assert any("validation" in line for line in drawn.splitlines()[1:]) is legend
            chart.show(flat)
            await pilot.pause()
            chart.render()
            assert "1.0" in re.sub(r"\x1b\[[0-9;]*m", "", chart.plt.build())


async def test_the_coach_banner_shows_what_went_wrong_and_the_report_keeps_it(make_app, tiny_config):
    from tests.tui.test_report_screen import settle, text_of
    from tests.tui.waiting import wait_for

    app = make_app(tiny_config.replace(epochs=2, learning_rate=1e-8, logging_steps=2, baseline=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        app.start_training()
        await wait_for(pilot, lambda: not app.training and app.progress.status == "finished")
        await wait_for(pilot, lambda: "also: " in str(app.screen.query_one("#coach").render()))  # both, redrawn
        banner = str(app.screen.query_one("#coach").render())
        kinds = [d.kind for d in app.progress.diagnostics]
        assert "loss_flat" in kinds and banner.startswith("⚠ coach: ")
        assert app.progress.diagnostics[-1].advice[1:] in banner.replace("\n", " ")  # capitalised in the banner
        await pilot.press("f4")
        await settle(pilot)
        shown = text_of(app, "#summary-tables")
        assert "Coach" in shown and "loss flat (step" in shown
