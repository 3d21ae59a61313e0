"""What a student met in the first hour: the report and console follow a run that just ended, and more."""

from pathlib import Path

from textual.widgets import Select

from tests.tui.test_report_screen import settle
from tests.tui.waiting import wait_for
from tui.widgets.predict_model import ModelPicker, model_key


async def _train_one(app, pilot) -> Path:
    app.start_training()
    await wait_for(pilot, lambda: app.progress.status == "finished")
    await wait_for(pilot, lambda: not app.training)
    return app.newest_run


async def test_after_a_run_ends_the_report_selects_it_and_the_console_uses_its_model(make_app, finished_runs, tiny_config):
    app = make_app(tiny_config.replace(epochs=1))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("down")  # the user looks at an older run
        await settle(pilot)
        await pilot.press("f5")
        picker = app.screen.query_one(ModelPicker)
        await wait_for(pilot, lambda: picker.predictor is not None)
        new = await _train_one(app, pilot)
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen.selected == new  # not the run selected before
        await pilot.press("f5")
        await wait_for(pilot, lambda: picker.predictor is not None and picker._want == model_key(new), timeout=20)


async def test_a_model_picked_by_hand_stays_and_the_newer_run_is_one_key_away(make_app, finished_runs, tiny_config):
    app = make_app(tiny_config.replace(epochs=1))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        picker = app.screen.query_one(ModelPicker)
        await wait_for(pilot, lambda: picker.predictor is not None)
        picked = next(model_key(run) for run in finished_runs if model_key(run) != picker._want)
        picker.query_one(Select).value = picked  # the user picks the other run's model
        await wait_for(pilot, lambda: picker.predictor is not None and picker._want == picked)
        new = await _train_one(app, pilot)
        await wait_for(pilot, lambda: picker.newer is not None and model_key(picker.newer) == model_key(new), timeout=20)
        assert picker._want == picked
        assert "ctrl+l uses it" in str(picker.query_one("#model-status").render())
        await pilot.press("f5", "ctrl+l")  # back on the console (training showed the dashboard), one key
        await wait_for(pilot, lambda: picker._want == model_key(new), timeout=20)


async def test_the_data_screen_follows_the_dataset_set_on_f2_and_shows_a_whole_review(make_app, tiny_config, tmp_path):
    from textual.widgets import Static

    from tests.tiny import reviews_frame
    from tui.safe import SafeInput

    other = tmp_path / "other.csv"
    frame = reviews_frame(60)
    frame.loc[0, "text"] = "a long review " * 30 + "that ends here"
    frame.to_csv(other, index=False)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f1")
        source = app.screen.query_one("#source", SafeInput)
        assert source.has_focus  # focused on F1, which is then left
        await pilot.press("f2")
        app.config = app.config.replace(dataset=str(other))  # what typing it on F2 does
        await pilot.press("f1", "ctrl+l")  # F1's hint: load
        await wait_for(pilot, lambda: app.dataset is not None)
        assert source.value == str(other) and app.dataset.source == str(other)  # not F1's older value
        table = app.screen.query_one("#rows-table")
        row = next(i for i in range(len(app.dataset.data.splits["train"]))
                   if app.dataset.data.splits["train"]["text"].iloc[i].endswith("that ends here"))
        await wait_for(pilot, lambda: table.row_count > row, timeout=20)  # filled (a later fill moves the cursor)
        table.focus()
        table.move_cursor(row=row)
        await wait_for(pilot, lambda: "that ends here" in str(app.screen.query_one("#row-text", Static).content))
        assert table.columns[next(iter(table.columns))].width >= 1 and table.size.width > 40


async def test_question_mark_lists_the_screens_keys_and_q_quits_outside_text_fields(make_app, finished_runs):
    from textual.widgets import TabbedContent

    from tui.screens.help_screen import HelpModal

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("3")  # the Errors tab, without Tab-ing there
        assert app.screen.query_one("#report-tabs", TabbedContent).active == "tab-errors"
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpModal))
        listed = dict(app.screen.rows)
        whats = [what for _, what in app.screen.rows]
        assert whats.index("Resume") < whats.index("Report") < whats.index("Cursor up")  # the screen's own first
        assert listed.get("R") == "Resume" and listed.get("a") == "Attach" and "Errors" in listed.values()
        await pilot.press("escape")
        await pilot.press("f1")  # the source field has focus: q is text there
        await pilot.press("q")
        assert app.is_running and app.screen.query_one("#source").value.endswith("q")
        await pilot.press("f4", "q")  # no text field: q quits (nothing trains, so without asking)
        await wait_for(pilot, lambda: not app.is_running, timeout=10)


async def test_the_palette_starts_a_background_run_after_asking(make_app):
    from tui.screens.modals import ConfirmModal

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Start training in background"].callback()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "background process" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert not app.training and app.newest_run is None
