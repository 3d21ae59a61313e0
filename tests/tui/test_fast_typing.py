"""Keys sent faster than the app redraws: every Tab moves a field, every Enter submits what was typed before it."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

from tests.tui.test_predict_screen import open_console, settle
from tui.widgets.predict_history import PredictHistory


async def burst(pilot, *keys: str) -> None:
    """Send `keys` the way a terminal delivers fast typing: all queued at once, before the app handles any.

    (`pilot.press` waits for the app to go idle after each key, which hides what a quick typist meets.)"""
    app = pilot.app
    for key in keys:
        character = key if len(key) == 1 else {"space": " "}.get(key)
        name = {" ": "space", ",": "comma", ".": "full_stop", "?": "question_mark"}.get(key, key)
        event = events.Key(name, character)
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause()


async def test_reviews_typed_quickly_are_predicted_one_by_one(make_app, finished_runs):
    async with make_app().run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        await burst(pilot, *"awful dull film", "enter", *"great superb acting", "enter", *"boring plot", "enter")
        await settle(pilot)
        assert [p.text for p in screen.query_one(PredictHistory).predictions] == [
            "awful dull film", "great superb acting", "boring plot"]
        assert not screen.query_one("#predict-error").display
        assert screen.query_one("#predict-review", Input).value == ""


async def test_a_pasted_review_of_several_lines_is_kept_whole_and_said(make_app, finished_runs):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        review = screen.query_one("#predict-review", Input)
        review.post_message(events.Paste("The cast is wonderful.\n\nBut the plot\r\ndrags badly."))
        await pilot.pause()
        assert review.value == "The cast is wonderful. But the plot drags badly."
        assert any("3 pasted lines are kept as one review" in n.message for n in app.seen_notifications)
        await pilot.press("enter")
        await settle(pilot)
        assert [p.text for p in screen.query_one(PredictHistory).predictions] == [
            "The cast is wonderful. But the plot drags badly."]


async def test_tabs_sent_quickly_on_f2_move_one_field_each_and_text_lands_there(make_app, tiny_config):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        screen = app.screen
        chain = screen.focus_chain
        first = screen.focused
        before = {w.id: w.value for w in screen.query(Input)}
        await burst(pilot, "tab", "tab", "tab", "8", "0", "0")
        await pilot.pause()
        target = chain[chain.index(first) + 3]
        assert screen.focused is target
        assert target.value == "800"  # the field's old text was selected on focus, and replaced
        assert {w.id: w.value for w in screen.query(Input) if w is not target} == {
            k: v for k, v in before.items() if k != target.id}
        await burst(pilot, "shift+tab", "shift+tab", "1", "2")
        await pilot.pause()
        assert screen.focused is chain[chain.index(first) + 1] and screen.focused.value == "12"


async def test_question_mark_pressed_first_opens_help_on_f1_and_f5(make_app, finished_runs):
    from tui.screens.help_screen import HelpModal

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        source = app.screen.query_one("#source", Input)
        assert app.screen.focused is source
        before = source.value
        await pilot.press("?")
        assert isinstance(app.screen, HelpModal) and app.screen.title_text == app.SCREEN_KEYS["dataset"][1]
        await pilot.press("escape")
        assert source.value == before and app.screen.focused is source

        screen = await open_console(pilot)
        review = screen.query_one("#predict-review", Input)
        assert screen.focused is review
        await pilot.press("?")
        assert isinstance(app.screen, HelpModal) and app.screen.title_text == app.SCREEN_KEYS["predict"][1]
        await pilot.press("escape")
        assert review.value == ""
        await pilot.press(*"is it good?")  # inside a review it is text
        assert review.value == "is it good?" and app.screen is screen
