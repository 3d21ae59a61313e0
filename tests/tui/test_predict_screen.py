"""The prediction console (F5): model choice, single reviews, samples, files, reviews sent from other screens."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from textual.widgets import Input, Select, Static

from core.predict import Prediction, model_dir_of
from core.predict import Predictor as RealPredictor
from tests.tui.fake_runs import fixed_explanation, write_fake_run
from tests.tui.waiting import wait_for
from tui.screens import predict_screen
from tui.screens.predict_screen import EMPTY_REVIEW, SAMPLES, PredictScreen
from tui.widgets.confidence import ConfidenceView, block_bar
from tui.widgets.predict_history import PredictHistory
from tui.widgets.predict_model import NO_MODEL, ModelPicker, model_key


async def settle(pilot) -> None:
    """Wait until no worker runs, including workers that finished workers start (load -> predict)."""
    app = pilot.app
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if all(w.is_finished for w in app.workers):
            screen = app.screen
            if not isinstance(screen, PredictScreen) or not (screen._queue or screen._predicting):
                return
    raise AssertionError("workers never settled")


async def open_console(pilot) -> PredictScreen:
    await pilot.press("f5")
    await settle(pilot)
    assert isinstance(pilot.app.screen, PredictScreen)
    return pilot.app.screen


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_newest_model_selected_and_a_typed_review_is_predicted(make_app, finished_runs):
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        assert screen.query_one(ModelPicker).query_one(Select).value == model_key(newer)
        assert newer.name in text_of(screen, "#model-status")
        assert screen.focused is screen.query_one("#predict-review", Input)
        await pilot.press(*"awful dull film", "enter")
        await settle(pilot)
        prediction = screen.query_one(ConfidenceView).prediction
        assert prediction.label == "negative" and 0.5 < prediction.confidence <= 1.0
        history = screen.query_one(PredictHistory)
        assert history.row_count == 1
        row = history.get_row_at(0)
        assert str(row[1]) == "negative" and str(row[2]) == f"{prediction.confidence:.1%}"
        assert str(row[4]) == "awful dull film"
        assert str(row[3]).endswith(" ms")


async def test_empty_review_shows_an_inline_error(make_app, finished_runs):
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_console(pilot)
        await pilot.press("space", "space", "enter")
        await settle(pilot)
        assert text_of(screen, "#predict-error") == EMPTY_REVIEW
        assert screen.query_one("#predict-error").display
        assert screen.query_one(PredictHistory).row_count == 0
        await pilot.press(*"great", "enter")  # a real review clears the error
        await settle(pilot)
        assert not screen.query_one("#predict-error").display
        assert screen.query_one(PredictHistory).row_count == 1


async def test_next_sample_five_times_gives_five_rows_in_order(make_app, finished_runs):
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_console(pilot)
        await pilot.press(*["ctrl+n"] * 5)  # no waiting: the queue keeps them in order
        await settle(pilot)
        history = screen.query_one(PredictHistory)
        assert history.row_count == 5
        assert [p.text for p in history.predictions] == SAMPLES[:5]
        assert history.get_row_at(0)[0] == 5  # newest first
        assert screen.query_one("#predict-review", Input).value == SAMPLES[4]
        await pilot.press("ctrl+b")
        await settle(pilot)
        assert history.predictions[-1].text == SAMPLES[3]


async def test_review_sent_from_another_screen_is_predicted(make_app, finished_runs):
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.current_mode == "dataset"
        app.send_to_console("awful dull film", older)  # the console does not exist yet
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PredictScreen) and app.pending_review is None
        assert screen.query_one(ModelPicker).query_one(Select).value == model_key(older)
        assert screen.query_one("#predict-review", Input).value == "awful dull film"
        assert [p.text for p in screen.query_one(PredictHistory).predictions] == ["awful dull film"]

        await pilot.press("f1")
        app.send_to_console("great superb acting", newer)  # the console exists: switched back and predicted
        await settle(pilot)
        assert app.screen is screen
        assert screen.query_one(ModelPicker).query_one(Select).value == model_key(newer)
        assert [p.text for p in screen.query_one(PredictHistory).predictions] == ["awful dull film", "great superb acting"]


async def test_picking_another_run_in_the_list_loads_its_model(make_app, finished_runs):
    older, newer = finished_runs
    async with make_app().run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        select = screen.query_one(ModelPicker).query_one(Select)
        select.focus()
        await pilot.press("enter", "down", "enter")  # open the list, move to the older run, pick it
        await settle(pilot)
        assert select.value == model_key(older)
        assert screen.predictor.model_dir == older / "model"
        assert older.name in text_of(screen, "#model-status")


async def test_typed_model_path_loads_and_a_bad_one_keeps_the_current_model(make_app, finished_runs, tmp_path):
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        picker = screen.query_one(ModelPicker)
        path = picker.query_one(Input)
        path.value = str(tmp_path / "no-such-model")
        path.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert picker._want == model_key(newer) and screen.predictor is not None
        assert newer.name in text_of(screen, "#model-status")

        path.value = str(older / "model")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.predictor.model_dir == older / "model"
        assert screen.query_one(ModelPicker).query_one(Select).is_blank()  # a model folder is not a listed run
        assert len(picker._cache) == 2  # switching back needs no reload


async def test_no_runs_says_so_and_a_new_run_is_picked_up(make_app, runs_root, trained_run):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_console(pilot)
        assert text_of(screen, "#model-status") == NO_MODEL
        await pilot.press(*"awful", "enter")
        await settle(pilot)
        assert text_of(screen, "#predict-error") == NO_MODEL
        assert screen.query_one(PredictHistory).row_count == 0

        run = write_fake_run(runs_root, "20260103-120000-tiny-reviews", model_dir=trained_run[0].run_dir / "model")
        app.runs_version += 1  # what the app does when a run finishes
        await settle(pilot)
        assert screen.query_one(ModelPicker).query_one(Select).value == model_key(run)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.query_one(PredictHistory).row_count == 1


def test_block_bar_uses_eighths():
    assert block_bar(0.5, 10) == ("█████", 5)
    assert block_bar(0.05, 10) == ("▌", 9)  # 4 eighths of a cell
    assert block_bar(1.2, 4) == ("████", 0)


class FixedPredictor:
    """A stand-in for core.predict.Predictor with fixed answers: the tiny model's confidences move a little
    from one training session to the next, and a snapshot must not."""

    label_names = ["negative", "positive"]
    device = SimpleNamespace(type="cpu")

    def __init__(self, path, device=None):
        self.model_dir = model_dir_of(path)
        self.lock = threading.RLock()

    def twin(self):
        return self

    def predict(self, texts, batch_size=32):
        negative = [0.93 if "awful" in t else 0.08 for t in texts]
        return [Prediction(t, "negative" if n > 0.5 else "positive", max(n, 1 - n), {"negative": n, "positive": 1 - n})
                for t, n in zip(texts, negative)]


def test_snapshot_after_two_predictions(snap_compare, make_app, finished_runs, monkeypatch):
    monkeypatch.setattr(predict_screen, "format_latency", lambda seconds: "4.2 ms")  # timing varies run to run
    monkeypatch.setattr("core.predict.Predictor", FixedPredictor)
    monkeypatch.setattr("core.explain.explain", lambda predictor, text: fixed_explanation(text, predictor))

    async def run_before(pilot) -> None:
        for widget in pilot.app.query(Input):
            widget.cursor_blink = False
        await open_console(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        await pilot.press(*"awful dull film", "enter")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        pilot.app.screen.refresh_bindings()  # the footer's keys for the field's new value, not a stale set
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=run_before)


async def test_console_keeps_only_the_two_most_recently_used_models(make_app, finished_runs, runs_root, trained_run):
    import gc
    import weakref

    older, newer = finished_runs
    third = write_fake_run(runs_root, "20260103-120000-tiny-reviews", model_dir=trained_run[0].run_dir / "model",
                           created=1_790_172_800.0)
    a, b, c = model_key(older), model_key(newer), model_key(third)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        picker = screen.query_one(ModelPicker)
        assert picker.cached == [c]  # the newest run's model, picked by default
        dropped = weakref.ref(picker.predictor)
        picker.use(older)
        await settle(pilot)
        assert picker.cached == [c, a] and picker.predictor.model_dir == older / "model"
        picker.use(newer)
        await settle(pilot)
        assert picker.cached == [a, b]  # the least recently used model is dropped...
        gc.collect()
        assert dropped() is None  # ...and nothing else holds it, so its memory is freed

        picker.use(older)  # still loaded: current at once, no loading
        assert picker.predictor is not None and picker.cached == [b, a]
        assert not [w for w in app.workers if w.group == "model-load"]

        picker.use(third)  # picked and left while it loads: the current model is never the one dropped
        picker.use(newer)
        await settle(pilot)
        assert picker.predictor.model_dir == newer / "model" and len(picker.cached) == 2 and b in picker.cached
        await pilot.press(*"awful dull film", "enter")
        await settle(pilot)
        assert screen.query_one(PredictHistory).row_count == 1


async def test_each_prediction_is_explained_word_by_word(make_app, finished_runs):
    from tui.widgets.explanation import ExplanationView

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        await pilot.press(*"the plot was awful", "enter")
        await settle(pilot)
        view = screen.query_one(ExplanationView)
        explanation = view.explanation
        assert explanation is not None and explanation.prediction.text == "the plot was awful"
        assert [w.word for w in explanation.words] == ["the", "plot", "was", "awful"]
        shown = str(view.render())
        assert shown.startswith("the plot was awful") and f"toward {explanation.prediction.label}:" in shown


async def test_an_onnx_export_is_listed_under_its_run_and_predicts(make_app, finished_runs):
    from core.export import export_onnx
    from tui.widgets.explanation import ExplanationView

    older, newer = finished_runs
    export_onnx(newer, quantize=True)
    async with make_app().run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        select = screen.query_one(ModelPicker).query_one(Select)
        assert [str(label) for label, _ in select._options[1:3]] == [f"{newer.name} · test acc 85.0%",
                                                                     f"ONNX int8 · {newer.name}"]
        select.focus()
        await pilot.press("enter", "down", "enter")  # the export, right below its run
        await settle(pilot)
        assert select.value == model_key(newer / "onnx") and screen.predictor.backend == "ONNX int8"
        assert f"ONNX int8 · {newer.name}" in text_of(screen, "#model-status")
        screen.query_one("#predict-review", Input).focus()
        await pilot.press(*"wonderful superb excellent", "enter")
        await settle(pilot)
        assert screen.query_one(ConfidenceView).prediction.label == "positive"
        assert "PyTorch model" in str(screen.query_one(ExplanationView).render())  # said, not a crash


async def test_an_explanation_never_delays_the_next_prediction(make_app, finished_runs, monkeypatch):
    from tests.tui.fake_runs import fixed_explanation
    from tui.widgets.explanation import ExplanationView

    latencies, explaining, release, explained = [], threading.Event(), threading.Event(), []

    def slow_explain(predictor, text):  # as core.explain does: the predictor's model is held throughout
        with predictor.lock:
            explaining.set()
            release.wait(30)  # the first explanation lasts until the test lets it end
            explained.append(text)
            return fixed_explanation(text, predictor)

    def record(seconds):
        latencies.append(seconds)
        return f"{seconds * 1000:.1f} ms"

    monkeypatch.setattr("core.explain.explain", slow_explain)
    monkeypatch.setattr(predict_screen, "format_latency", record)
    async with make_app().run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        await pilot.press(*"awful dull film", "enter")
        await wait_for(pilot, explaining.is_set, timeout=30)
        await pilot.press(*"great acting", "enter")
        history = screen.query_one(PredictHistory)
        await wait_for(pilot, lambda: history.row_count == 2, timeout=30)
        assert not explained  # the second prediction came while the first review was still being explained
        assert latencies[1] < 1.0  # and its latency is the prediction's own
        await pilot.press(*"boring", "enter", *"superb", "enter")  # asked while one runs: only the last waits
        await wait_for(pilot, lambda: history.row_count == 4, timeout=30)
        release.set()
        await settle(pilot)
        await wait_for(pilot, lambda: screen.query_one(ExplanationView).explanation is not None, timeout=30)
        assert explained == ["awful dull film", "superb"]
        assert screen.query_one(ExplanationView).explanation.prediction.text == "superb"


class GatedPredictor:
    """core.predict.Predictor whose loads of real models wait for `gate` (a typed bad path fails at once)."""

    gate = threading.Event()
    failures: list = []  # keys of loads to fail once, as a damaged model would

    def __new__(cls, path, *args, **kwargs):
        from core.errors import ModelError

        model_dir_of(path)  # a path that is no model fails at once
        cls.gate.wait(30)
        if model_key(path) in cls.failures:
            cls.failures.remove(model_key(path))
            raise ModelError(f"cannot load the model in {path}: damaged")
        return RealPredictor(path, *args, **kwargs)


async def _console_while_the_default_loads(pilot, monkeypatch):
    """F5 with the newest run's model held loading (GatedPredictor's gate closed): (screen, picker)."""
    GatedPredictor.gate = threading.Event()
    monkeypatch.setattr("core.predict.Predictor", GatedPredictor)
    await pilot.press("f5")
    screen = pilot.app.screen
    picker = screen.query_one(ModelPicker)
    await wait_for(pilot, lambda: picker._loading)  # the newest run's model is loading
    return screen, picker


async def test_a_bad_path_typed_while_the_default_model_loads_keeps_the_default(make_app, finished_runs, tmp_path,
                                                                                monkeypatch):
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen, picker = await _console_while_the_default_loads(pilot, monkeypatch)  # the newest run's model is loading
        path = picker.query_one(Input)
        path.value = str(tmp_path / "no-such-model")
        path.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.seen_notifications))
        GatedPredictor.gate.set()
        await wait_for(pilot, lambda: not picker._loading and screen.predictor is not None, timeout=30)
        assert picker._want == model_key(newer)
        status = text_of(screen, "#model-status")
        assert newer.name in status and status.startswith("no-such-model could not be loaded · Model: ")
        errors = [n.message for n in app.seen_notifications if n.severity == "error"]
        assert len(errors) == 1 and "no run or model folder" in errors[0] and "\n" not in errors[0]
        screen.query_one("#predict-review", Input).focus()
        await pilot.press(*"awful", "enter")
        await settle(pilot)
        assert screen.query_one(PredictHistory).row_count == 1


async def test_a_bad_path_failing_after_the_default_loaded_keeps_the_default(make_app, finished_runs, tmp_path,
                                                                             monkeypatch):
    older, newer = finished_runs
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen, picker = await _console_while_the_default_loads(pilot, monkeypatch)
        picker.use(older / "model", by_hand=True)  # a real model, picked while the default loads...
        GatedPredictor.failures = [model_key(older / "model")]  # ...that turns out damaged
        GatedPredictor.gate.set()
        await wait_for(pilot, lambda: not picker._loading and screen.predictor is not None, timeout=30)
        assert picker._want == model_key(newer)


async def test_ctrl_l_loads_the_newest_run_again_after_its_load_failed(make_app, finished_runs, monkeypatch):
    older, newer = finished_runs
    GatedPredictor.gate = threading.Event()
    GatedPredictor.gate.set()
    GatedPredictor.failures = [model_key(newer)]
    monkeypatch.setattr("core.predict.Predictor", GatedPredictor)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        screen = app.screen
        picker = screen.query_one(ModelPicker)
        await wait_for(pilot, lambda: picker.runs_known and not picker._loading, timeout=30)
        assert screen.predictor is None
        assert "No trained model yet" not in text_of(screen, "#model-status")  # there are runs: it did not load
        await pilot.press(*"awful", "enter")
        assert "ctrl+l" in text_of(screen, "#predict-error")
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert picker._want == model_key(newer) and screen.predictor is not None
