"""The prediction console's files (F5): predicting a file of reviews, scoring a labelled one, and saving the
session as `predict --save` saves (devices refused, links written through, formulas neutralised)."""

from __future__ import annotations

import csv

from textual.widgets import Input

from tests.tui.test_predict_screen import open_console, settle
from tui.widgets.predict_history import PredictHistory
from tui.widgets.predict_panels import BatchStatus, PathPrompt


async def predict_typed(pilot, screen, text: str) -> None:
    """Type `text` into the console and predict it."""
    screen.query_one("#predict-review", Input).value = text
    await pilot.press("enter")
    await settle(pilot)


async def answer_prompt(pilot, screen, key: str, path) -> None:
    """Open the path prompt with `key` (ctrl+o: predict a file, ctrl+s: save) and answer it with `path`."""
    await pilot.press(key)
    screen.query_one(PathPrompt).query_one(Input).value = str(path)
    await pilot.press("enter")
    await settle(pilot)


async def test_batch_file_and_save_csv(make_app, finished_runs, tmp_path, monkeypatch):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("great wonderful film\n\nawful boring plot\nthe ending was superb\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    app = make_app()
    notes = []
    async with app.run_test(size=(100, 30)) as pilot:
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append((message, kw.get("severity"))))
        screen = await open_console(pilot)
        prompt = screen.query_one(PathPrompt).query_one(Input)

        await pilot.press("ctrl+o")
        assert screen.focused is prompt
        prompt.value = str(tmp_path / "missing.txt")
        await pilot.press("enter")
        await settle(pilot)
        assert any("file not found" in m and sev == "error" for m, sev in notes)
        assert screen.query_one(PredictHistory).row_count == 0

        await pilot.press("ctrl+o")
        prompt.value = str(reviews)
        await pilot.press("enter")
        await settle(pilot)
        summary = screen.query_one(BatchStatus).summary
        assert "3 reviews" in summary and "1 blank line skipped" in summary and "reviews/s" in summary
        assert screen.query_one(PredictHistory).row_count == 3

        await pilot.press("ctrl+s")
        assert prompt.value == "predictions.csv"
        prompt.value = str(out)
        await pilot.press("enter")
        await settle(pilot)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["text"] for r in rows] == ["great wonderful film", "awful boring plot", "the ending was superb"]
    assert {r["label"] for r in rows} <= {"negative", "positive"}


async def test_ctrl_s_refuses_a_fifo_writes_through_a_link_and_neutralises_formulas(make_app, finished_runs,
                                                                                     tmp_path):
    """The console saves as `predict --save` does: a FIFO (or device) is refused and left as it was, a link is
    written through and stays a link, and a review that would start a spreadsheet formula is saved as text."""
    import os
    import stat

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(target)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        await predict_typed(pilot, screen, '=HYPERLINK("http://x.example","click") great film')
        await answer_prompt(pilot, screen, "ctrl+s", fifo)
        errors = [n.message for n in app.seen_notifications if n.severity == "error"]
        assert len(errors) == 1 and "pipe.csv is not a regular file (a FIFO, a named pipe)" in errors[0]
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        await answer_prompt(pilot, screen, "ctrl+s", tmp_path / "link.csv")
        assert any("Saved 1 predictions" in n.message for n in app.seen_notifications)
    assert (tmp_path / "link.csv").is_symlink() and os.readlink(tmp_path / "link.csv") == str(target)
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["text"] for r in rows] == ['\'=HYPERLINK("http://x.example","click") great film']
    assert float(rows[0]["confidence"]) > 0.5


async def test_a_labelled_file_is_scored_and_ctrl_s_saves_the_whole_session(make_app, finished_runs, tmp_path):
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,label\ngreat wonderful film,positive\nawful boring plot,negative\n", encoding="utf-8")
    out = tmp_path / "session.csv"
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_console(pilot)
        await predict_typed(pilot, screen, "typed by hand")
        await answer_prompt(pilot, screen, "ctrl+o", labelled)
        status = screen.query_one(BatchStatus)
        assert "accuracy" in status.summary and "against the file's labels" in status.summary
        matrix = status.query_one("#batch-confusion")
        assert matrix.has_class("-shown") and matrix.content.columns[0].header == "true \\ predicted"
        await answer_prompt(pilot, screen, "ctrl+s", out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["text"] for r in rows] == ["typed by hand", "great wonderful film", "awful boring plot"]
    assert [r["true_label"] for r in rows] == ["", "positive", "negative"]
