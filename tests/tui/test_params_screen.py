"""The hyperparameter form: checks as you type, presets, derived plan and estimate, TOML, starting a run."""

from __future__ import annotations

import contextlib

from textual.widgets import Button, Input, Label, Static
from textual.worker import WorkerFailed

from core.config import FIELDS, TrainConfig, load_toml
from core.training.planning import plan
from tests.tui.fake_runs import write_fake_run
from tests.tui.waiting import wait_for
from tui.screens.modals import ConfirmModal
from tui.screens.params_screen import ParamsScreen


def _text(widget) -> str:
    return str(widget.render())


def _error(screen, name: str) -> str:
    """The error shown under field `name` ('' while it is valid)."""
    row = screen.query_one(f"#row-{name}")
    return _text(row.query_one(".field-error", Static)) if row.has_class("-invalid") else ""


def _field(screen, name: str) -> Input:
    return screen.query_one(f"#field-{name}", Input)


async def _type(pilot, name: str, text: str, keys: bool = False) -> None:
    """Focus field `name` and replace its text (key by key when `keys`)."""
    widget = _field(pilot.app.screen, name)
    widget.focus()
    widget.value = "" if keys else text
    if keys:
        await pilot.press(*text)
    await pilot.pause()  # the input's change reaches the form...
    await pilot.pause()  # ...and the form's Edited the screen


async def _open(pilot) -> ParamsScreen:
    await pilot.press("f2")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ParamsScreen)
    return pilot.app.screen


async def _click_and_wait(pilot, selector: str) -> None:
    """Click, let the handler start its worker, wait for it and for the UI to apply its result."""
    await pilot.click(selector)
    await pilot.pause()
    with contextlib.suppress(WorkerFailed):  # failures are reported by the screen, checked by the tests
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _start_disabled(screen) -> bool:
    return screen.query_one("#start", Button).disabled


async def test_every_field_has_an_input(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        for name in FIELDS:
            assert screen.query_one(f"#field-{name}").name == name
        assert _field(screen, "epochs").value == str(app.config.epochs)
        assert screen.query_one("#field-lr_scheduler").value == app.config.lr_scheduler


async def test_bad_values_show_their_errors_and_disable_start_until_fixed(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        assert not _start_disabled(screen)
        await _type(pilot, "epochs", "abc", keys=True)
        assert "must be a whole number" in _error(screen, "epochs")
        assert _field(screen, "epochs").has_class("field-invalid")
        assert _start_disabled(screen)
        await _type(pilot, "learning_rate", "-1", keys=True)
        assert "must be at least" in _error(screen, "learning_rate")
        await pilot.press("ctrl+t")  # refused while invalid, with the fields named
        assert not app.training
        assert any("epochs, learning_rate" in n.message for n in app.seen_notifications)

        await _type(pilot, "epochs", "4")
        assert _error(screen, "epochs") == "" and not _field(screen, "epochs").has_class("field-invalid")
        assert _start_disabled(screen)
        await _type(pilot, "learning_rate", "0.001")
        assert not _start_disabled(screen)
        assert app.config.epochs == 4 and app.config.learning_rate == 0.001  # valid edits apply at once


async def test_cross_field_errors_show_under_their_field(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _type(pilot, "val_fraction", "0.3")
        await _type(pilot, "test_fraction", "0.35")
        assert "at least 40% for training" in _error(screen, "test_fraction")
        assert _error(screen, "val_fraction") == "" and _start_disabled(screen)


async def test_presets_refill_the_form_and_keep_the_data_source(make_app, tiny_config):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await pilot.click("#preset-thorough")
        await pilot.pause()
        assert _field(screen, "epochs").value == "5" and _field(screen, "max_samples").value == "20000"
        assert _field(screen, "early_stopping_patience").value == "2"
        assert _field(screen, "dataset").value == tiny_config.dataset and app.config.model == tiny_config.model
        assert app.config.epochs == 5
        await pilot.click("#preset-quick-check")
        await pilot.pause()
        assert _field(screen, "epochs").value == "1" and app.config.max_samples == 500


async def test_derived_figures_and_estimate_follow_the_form(make_app, runs_root):
    write_fake_run(runs_root, "20260101-120000-tiny-reviews")  # model "tiny", 32 train samples/s
    app = make_app(TrainConfig(model="tiny", dataset="reviews.csv"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)

        def figure(key: str) -> str:
            return _text(screen.query_one(f"#fig-{key}", Label))

        assert "no estimate yet" in _text(screen.query_one("#estimate", Static))
        expected = plan(app.config)
        assert figure("steps_per_epoch") == f"≤{expected.steps_per_epoch}"  # from max_samples: the data is not loaded
        await _type(pilot, "batch_size", "32")
        assert figure("effective_batch") == "32"
        assert figure("steps_per_epoch") == f"≤{plan(app.config).steps_per_epoch}"
        assert plan(app.config).steps_per_epoch < expected.steps_per_epoch

        app.device_name = "CPU (2 threads)"  # the fake run's device
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        # 3500 train samples x 3 epochs at 32 samples/s
        assert _text(screen.query_one("#estimate", Static)) == (
            "estimated training time: ~5m28s (from run 20260101-120000)")


async def test_toml_save_then_load_round_trips(make_app, tmp_path):
    app = make_app()
    path = tmp_path / "course.toml"
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _type(pilot, "epochs", "7")
        screen.query_one("#toml-path", Input).value = str(path)
        await _click_and_wait(pilot, "#save")
        assert load_toml(path) == app.config and app.config.epochs == 7

        await _type(pilot, "epochs", "2")
        await _type(pilot, "seed", "x")
        await _click_and_wait(pilot, "#load")
        assert _field(screen, "epochs").value == "7" and _field(screen, "seed").value == "42"
        assert app.config == load_toml(path) and not _start_disabled(screen)

        screen.query_one("#toml-path", Input).value = str(tmp_path / "missing.toml")
        await _click_and_wait(pilot, "#load")
        assert any(n.severity == "error" and "file not found" in n.message for n in app.seen_notifications)
        assert _field(screen, "epochs").value == "7"


async def test_config_changes_from_elsewhere_refill_only_their_fields(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _type(pilot, "epochs", "abc")
        app.config = app.config.replace(dataset="other.csv", label_column="stars")
        await pilot.pause()
        assert _field(screen, "dataset").value == "other.csv" and _field(screen, "label_column").value == "stars"
        assert _field(screen, "epochs").value == "abc" and _start_disabled(screen)


async def test_start_with_a_valid_form_starts_training(make_app, runs_root):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot)
        await _type(pilot, "epochs", "50", keys=True)  # long enough to still be running when stopped
        await pilot.press("ctrl+t")  # works while the input has focus, and asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "50 epochs" in app.screen.question and "steps" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: app.training)
        assert app.current_mode == "train"
        assert "epochs = 50" in (runs_root / "last.toml").read_text()  # the next app opens with these settings
        assert app.config.epochs == 50
        app.stop_now()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.training and app.progress.status == "stopped"


def test_snapshot_default_form(snap_compare, make_app):
    async def open_params(pilot):
        await pilot.press("f2")
        await pilot.pause()
        pilot.app.screen.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(make_app(TrainConfig()), terminal_size=(100, 30), run_before=open_params)


async def test_keystrokes_arriving_together_settle(make_app):
    """Two keys queued before the first is handled (fast typing, paste over SSH) must not ping-pong the form."""
    from textual import events

    app = make_app(TrainConfig(model="distilbert-base-uncased"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        field = _field(screen, "model")
        field.focus()
        field.cursor_position = len(field.value)
        for ch in "ab":
            app.post_message(events.Key(ch, ch))
        await wait_for(pilot, lambda: field.value == app.config.model == "distilbert-base-uncasedab", timeout=10)
        versions = app.config
        await pilot.pause(0.5)  # a window in which nothing may happen: a ping-pong would rewrite the config
        assert app.config is versions


async def test_max_length_beyond_what_the_model_takes_is_a_field_error(make_app, tiny_config):
    from core.format import short_name
    from tests.tui.waiting import wait_for

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        form = screen.form
        await wait_for(pilot, lambda: tiny_config.model in form.model_configs)  # read in a thread, once
        assert form.model_configs[tiny_config.model] is not None
        assert _error(screen, "max_length") == "" and not _start_disabled(screen)

        await _type(pilot, "max_length", "8192", keys=True)
        await wait_for(pilot, lambda: _error(screen, "max_length") != "")
        assert _error(screen, "max_length") == (
            f"✗ 8192 is more than {short_name(tiny_config.model)} takes (512 tokens); use at most 512")
        assert _start_disabled(screen) and _field(screen, "max_length").has_class("field-invalid")
        assert app.config.max_length <= 512  # the invalid value never reached the app (81, typed on the way, did)
        await pilot.press("ctrl+t")
        assert not app.training

        await _type(pilot, "max_length", "64", keys=True)
        assert _error(screen, "max_length") == "" and not _start_disabled(screen)
        assert app.config.max_length == 64

        # Another model is checked once its config is read; an unreadable one is left to the run's own checks.
        await _type(pilot, "max_length", "8192", keys=True)
        await _type(pilot, "model", "no-such-model-here", keys=True)
        await wait_for(pilot, lambda: "no-such-model-here" in form.model_configs)
        assert form.model_configs["no-such-model-here"] is None
        assert _error(screen, "max_length") == "" and not _start_disabled(screen)
        await _type(pilot, "model", tiny_config.model)  # back to the cached tiny model: the error is back at once
        assert _error(screen, "max_length").startswith("✗ 8192 is more than") and _start_disabled(screen)


async def test_a_preset_says_what_it_changed_and_ctrl_z_undoes_it(make_app, tiny_config):
    app = make_app(tiny_config.replace(max_length=64))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await pilot.press("f6")  # the first preset, quick check, from anywhere on F2
        await wait_for(pilot, lambda: app.config.max_samples == 500)
        said = app.seen_notifications[-1].message
        assert "Preset 'quick check' changed" in said and "max_length 64 → 256" in said and "ctrl+z" in said
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: app.config.max_length == 64 and app.config.max_samples == tiny_config.max_samples)
        assert _field(screen, "max_length").value == "64"


async def test_focus_stops_at_the_ends_of_the_form_and_skips_invisible_stops(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        first = screen.focus_chain[0]
        first.focus()
        await pilot.press("shift+tab")  # used to wrap round to Start
        assert screen.focused is first
        assert all(w.region.height > 0 or w.display for w in screen.focus_chain)
        assert not any(type(w).__name__ == "ConfigForm" for w in screen.focus_chain)


async def test_the_model_field_offers_models_used_before(make_app, finished_runs):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await wait_for(pilot, lambda: _field(screen, "model").suggester is not None)
        assert await _field(screen, "model").suggester.get_suggestion("ti") == "tiny"


def test_the_app_reopens_with_the_settings_last_started(tmp_path, tiny_config):
    from core.config import last_config, save_last_config

    assert last_config(tmp_path) is None
    save_last_config(tiny_config.replace(epochs=7), tmp_path)
    assert last_config(tmp_path) == tiny_config.replace(epochs=7)
    (tmp_path / "last.toml").write_text("epochs = 'many'\n")
    assert last_config(tmp_path) is None  # a file this version cannot read is ignored, not fatal


async def test_the_plan_counts_the_loaded_rows_until_the_data_settings_change(make_app, tiny_config):
    """Another model splits the same rows; another file or split size does not."""
    from transformers import AutoTokenizer

    from core.data.stats import build_preview
    from core.format import short_name

    preview = build_preview(tiny_config, AutoTokenizer.from_pretrained)
    app = make_app(tiny_config)
    async with app.run_test(size=(100, 30)) as pilot:
        app.dataset = preview
        screen = await _open(pilot)
        loaded = str(plan(tiny_config, preview.rows).train_samples)
        from_max_samples = str(plan(tiny_config).train_samples)
        assert loaded != from_max_samples  # the fixture tells the two apart

        def counted() -> tuple[str, str]:
            return (_text(screen.query_one("#fig-train_samples", Label)),
                    _text(screen.query_one("#plan-source", Static)))

        assert counted() == (loaded, f"{short_name(tiny_config.model)} · from the loaded data ({preview.rows} clean rows)")
        await _type(pilot, "model", "another-model")
        assert counted()[0] == loaded and "from the loaded data" in counted()[1]
        await _type(pilot, "max_samples", "40")
        assert counted()[0] == f"≤{plan(app.config).train_samples}" and "from max_samples" in counted()[1]
        await _type(pilot, "max_samples", "0")
        assert counted()[0] == "?"  # every row of a file not loaded with these settings: unknown, not 0
        app.device_name = "CPU (2 threads)"
        await wait_for(pilot, lambda: "estimating" not in _text(screen.query_one("#estimate", Static)))
        assert _text(screen.query_one("#estimate", Static)) == "no estimate yet: load the data (F1) to count its rows"


async def test_what_was_typed_is_there_when_the_app_reopens(make_app, runs_root, tiny_config):
    from core.config import last_config

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot)
        await _type(pilot, "max_length", "48")
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert last_config(runs_root) == tiny_config.replace(max_length=48)  # what run_app opens with


def test_the_plan_says_when_only_a_sample_of_the_loaded_rows_trains():
    from tui.screens.params_screen import _loaded_rows

    assert _loaded_rows(4000, 1500) == "from the loaded data (4000 clean rows, 1500 of them sampled)"
    assert _loaded_rows(300, 5000) == _loaded_rows(300, 0) == "from the loaded data (300 clean rows)"


async def test_the_start_question_warms_up_a_run_here_but_not_a_background_one(make_app, monkeypatch):
    import core.training.warm as warm

    warmed = []
    monkeypatch.setattr(warm, "warm_up", lambda config: warmed.append(config) or ["imports"])
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.confirm_start(detached=True)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await app.workers.wait_for_complete()
        assert warmed == []  # its own process imports what it needs
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        app.confirm_start()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await wait_for(pilot, lambda: warmed == [app.config])
        assert not app.training  # warming is not starting


async def test_a_learning_rate_far_above_fine_tunings_is_a_warning_not_an_error(make_app, tiny_config):
    async with make_app(tiny_config.replace(learning_rate=2e-5)).run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        row = screen.query_one("#row-learning_rate")
        assert not row.has_class("-warned")
        await _type(pilot, "learning_rate", "1.0")
        assert row.has_class("-warned") and not row.has_class("-invalid") and not _start_disabled(screen)
        shown = _text(row.query_one(".field-error", Static))
        assert shown.startswith("⚠ 1 is high for fine-tuning, which usually uses 1e-5 to 1e-4")
        await _type(pilot, "learning_rate", "2e-5, 0.01")  # a sweep: its highest rate counts
        assert row.has_class("-warned")
        await _type(pilot, "learning_rate", "5e-5")
        assert not row.has_class("-warned")


async def test_a_preset_over_invalid_fields_names_the_fields_it_reset(make_app, tiny_config):
    app = make_app(tiny_config)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _type(pilot, "epochs", "three")
        await _type(pilot, "weight_decay", "-1")
        assert _error(screen, "epochs") and _error(screen, "weight_decay")
        await pilot.press("f8")
        await pilot.pause()
        said = app.seen_notifications[-1].message
        assert "reset the invalid fields epochs ('three'), weight_decay ('-1')" in said
        assert not screen.form.errors


async def test_a_sweep_over_batch_size_shows_the_range_of_steps(make_app, tiny_config):
    config = tiny_config.replace(max_samples=400, batch_size=16)
    async with make_app(config).run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        await _type(pilot, "batch_size", "16, 32")
        small, large = plan(config.replace(batch_size=32)), plan(config)

        def figure(key: str) -> str:
            return _text(screen.query_one(f"#fig-{key}", Label))

        assert figure("effective_batch") == "16–32"
        assert figure("steps_per_epoch") == f"≤{small.steps_per_epoch}–{large.steps_per_epoch}"
        assert figure("total_steps") == f"≤{small.total_steps}–{large.total_steps}"
