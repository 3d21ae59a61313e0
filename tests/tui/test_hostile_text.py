"""User text with escape sequences and markup is shown literally, with visible `\\x1b`, on every screen."""

from __future__ import annotations

import html
import json
import re

from textual.widgets import DataTable, Input, Static, TabbedContent

from core.events import StageChanged, TrainingFailed
from tests.tiny import reviews_frame
from tests.tui.fake_runs import write_fake_run
from tests.tui.waiting import wait_for
from tui.messages import TrainingEvent
from tui.screens.modals import ErrorModal
from tui.widgets.confidence import ConfidenceView
from tui.widgets.predict_history import PredictHistory
from tui.widgets.predict_panels import BatchStatus, PathPrompt

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title if it reaches the terminal raw
CLEAR = "\x1b[2J"  # clears the terminal
MARKUP = "[/b] [red]x [link=evil]click"  # a closing tag with no opening one raises MarkupError if parsed
TEXT_COLUMN = "review [/b] [red]x"
LABELS = ("bad [/b]", f"good {CLEAR}[red]")


def screen_text(app) -> str:
    """The screen as a screenshot shows it, checked for raw escapes; returned as plain text, one line per row."""
    svg = app.export_screenshot()
    assert "\x1b" not in svg and "\x07" not in svg
    rows: dict[int, list[tuple[float, str]]] = {}
    for x, row, text in re.findall(r'<text [^>]*x="([\d.]+)"[^>]*clip-path="url\(#terminal-\d+-line-(\d+)\)">([^<]*)</text>', svg):
        rows.setdefault(int(row), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return "\n".join("".join(t for _, t in sorted(rows[r])) for r in sorted(rows))


def plain(renderable) -> str:
    return str(renderable)


def static_text(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def no_raw_escapes(*texts: str) -> bool:
    return not any("\x1b" in t or "\x07" in t for t in texts)


async def test_dataset_with_escapes_and_markup_in_reviews_columns_and_labels(make_app, tmp_path):
    frame = reviews_frame(120, text_col=TEXT_COLUMN, labels=LABELS)
    # Control characters in a few rows only: a file mostly of them is refused as binary.
    frame[TEXT_COLUMN] = [f"{TITLE}{t} {MARKUP}{CLEAR}" if i % 10 == 0 else f"{t} {MARKUP}"
                          for i, t in enumerate(frame[TEXT_COLUMN])]
    path = tmp_path / "hostile [red]x [link=evil].csv"
    frame.to_csv(path, index=False)
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = app.screen
        screen.query_one("#text-columns", Input).value = TEXT_COLUMN
        screen.query_one("#label-column", Input).value = ""
        source = screen.query_one("#source", Input)
        source.value = str(path)
        source.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.dataset is not None)
        await pilot.pause()
        assert not [n for n in app.seen_notifications if n.severity == "error"]

        table = screen.query_one("#rows-table", DataTable)
        cells = [plain(c) for i in range(table.row_count) for c in table.get_row_at(i)]
        assert no_raw_escapes(*cells)
        assert any(c.startswith("\\x1b]0;pwned\\x07") for c in cells)  # shown, escaped
        assert any("[/b] [red]x [l" in c for c in cells)  # and literally
        assert {"bad [/b]", "good \\x1b[2j[red]"} <= set(cells)  # core lower-cases label names
        notes = static_text(screen, "#notes")
        assert TEXT_COLUMN in notes and "good \\x1b[2j[red]" in notes and no_raw_escapes(notes)
        shown = screen_text(app)
        assert "\\x1b" in shown and "[/b] [red]x" in shown and "hostile [red]x [link=evil].csv" in shown


async def test_an_error_naming_a_column_with_escapes_is_shown_escaped(make_app, tmp_path):
    path = tmp_path / "columns.csv"
    reviews_frame(40, text_col=f"words{CLEAR}[/b]").to_csv(path, index=False)
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        source = app.screen.query_one("#source", Input)
        source.value = str(path)
        source.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.seen_notifications))
        await wait_for(pilot, lambda: bool(app.screen.query("Toast")))
        await pilot.pause()
        message = next(n.message for n in app.seen_notifications if n.severity == "error")
        assert "no text column found" in message and "words\\x1b[2J[/b]" in message
        shown = screen_text(app)
        assert "\\x1b[2J[/b]" in shown, shown


async def test_batch_file_typed_review_and_label_names_in_the_console(make_app, trained_run, runs_root, tmp_path):
    # A model whose label names carry markup and an escape sequence, as a user's data can give it.
    model = tmp_path / "hostile-model"
    import shutil

    shutil.copytree(trained_run[0].run_dir / "model", model)
    config = json.loads((model / "config.json").read_text())
    config["id2label"] = {"0": LABELS[0], "1": LABELS[1]}
    config["label2id"] = {LABELS[0]: 0, LABELS[1]: 1}
    (model / "config.json").write_text(json.dumps(config))
    write_fake_run(runs_root, "20260101-120000-tiny-reviews", model_dir=model)

    reviews = tmp_path / "reviews [red]x [link=evil].txt"
    lines = [f"{TITLE}awful dull film {MARKUP}{CLEAR}"] + [
        f"{MARKUP} review {i}: great wonderful film, the ending was superb and the actors were brilliant"
        for i in range(9)]  # control characters in a few lines only: a file mostly of them is refused as binary
    reviews.write_text("\n".join(lines) + "\n", encoding="utf-8")
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("f5")
        screen = app.screen
        await wait_for(pilot, lambda: screen.predictor is not None)
        await pilot.press("ctrl+o")
        prompt = screen.query_one(PathPrompt).query_one(Input)
        prompt.value = str(reviews)
        await pilot.press("enter")
        history = screen.query_one(PredictHistory)
        await wait_for(pilot, lambda: history.row_count == 10)
        cells = [plain(c) for i in range(history.row_count) for c in history.get_row_at(i)]
        assert no_raw_escapes(*cells) and any("\\x1b]0;pwned\\x07" in c for c in cells)
        assert any(c.startswith(MARKUP) for c in cells)
        assert "reviews [red]x [link=evil].txt" in screen.query_one(BatchStatus).summary

        # A review with escapes sent from the report (or pasted): escaped in the box, predicted, shown.
        app.send_to_console(f"{TITLE}awful {MARKUP}{CLEAR}")
        await wait_for(pilot, lambda: history.row_count == 11 and not screen._predicting)
        review = screen.query_one("#predict-review", Input).value
        assert review == f"\\x1b]0;pwned\\x07awful {MARKUP}\\x1b[2J"
        panel = str(screen.query_one(ConfidenceView).render())
        assert panel.startswith(("BAD [/B]  ", "GOOD \\x1b[2J[RED]  ")) and no_raw_escapes(panel)
        assert "good \\x1b[2J[red]" in panel and "bad [/b]" in panel
        shown = screen_text(app)
        assert "\\x1b" in shown and "[/b] [red]x" in shown


async def test_report_with_escapes_in_reviews_labels_names_and_errors(make_app, runs_root):
    run = write_fake_run(runs_root, "20260101-120000-tiny-reviews")
    rows = [{"text": f"{TITLE}review {i} {MARKUP}{CLEAR}", "label": LABELS[i % 2], "predicted": LABELS[1 - i % 2],
             "confidence": 0.9 - i / 100, "correct": False, "probabilities": {}} for i in range(5)]
    (run / "test_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["test"]["label_names"] = list(LABELS)
    metrics["test"]["per_class"] = {name: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 30} for name in LABELS}
    (run / "metrics.json").write_text(json.dumps(metrics))
    record = json.loads((run / "config.json").read_text())
    record["config"]["model"] = f"models/{CLEAR}[red]x-bert"
    record["device"] = f"cpu {TITLE}"
    (run / "config.json").write_text(json.dumps(record))
    failed = write_fake_run(runs_root, "20260102-120000-tiny-reviews", status="failed", created=1_790_086_400.0)
    (failed / "status.json").write_text(json.dumps({"status": "failed", "error": f"{TITLE}boom [/b] {CLEAR}"}))

    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("f4")
        screen = app.screen
        await wait_for(pilot, lambda: screen.report is not None and screen.report.path == failed)
        await pilot.pause()
        head = static_text(screen, "#summary-head")
        assert "\\x1b]0;pwned\\x07boom [/b] \\x1b[2J" in head and no_raw_escapes(head)
        screen_text(app)

        await pilot.press("down")
        await wait_for(pilot, lambda: screen.report.path == run)
        await pilot.pause()
        runs = screen.query_one("#runs", DataTable)
        assert plain(runs.get_row_at(1)[5]) == "\\x1b[2J[red]x-bert"
        head = static_text(screen, "#summary-head")
        assert "cpu \\x1b]0;pwned\\x07" in head and no_raw_escapes(head)
        shown = screen_text(app)
        assert "bad [/b]" in shown and "good \\x1b[2J[red]" in shown  # confusion matrix and per-class tables

        screen.query_one(TabbedContent).active = "tab-errors"
        await pilot.pause()
        errors = screen.query_one("#errors", DataTable)
        await wait_for(pilot, lambda: errors.row_count == 5)
        cells = [plain(c) for c in errors.get_row_at(0)]
        assert cells[1:] == ["bad [/b]", "good \\x1b[2J[red]", f"\\x1b]0;pwned\\x07review 0 {MARKUP}\\x1b[2J"]
        full = static_text(screen, "#error-text")
        assert full == f"\\x1b]0;pwned\\x07review 0 {MARKUP}\\x1b[2J"
        shown = screen_text(app)
        assert "[link=evil]click" in shown


async def test_dashboard_log_status_and_error_modal_with_escapes(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("f3")
        app.post_message(TrainingEvent(StageChanged("data", f"text column auto-detected: {TEXT_COLUMN}{CLEAR}")))
        await wait_for(pilot, lambda: TEXT_COLUMN in static_text(app.screen, "#status-line"))
        assert "\\x1b[2J" in static_text(app.screen, "#status-line")
        app.post_message(TrainingEvent(TrainingFailed(run_dir="", title="Dataset problem",
                                                      message=f"{TITLE}column {MARKUP} has no text")))
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.pause()
        shown = screen_text(app)
        assert "\\x1b]0;pwned\\x07column [/b] [red]x" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorModal))
        log = "\n".join(line.text for line in app.screen.query_one("#log").lines)
        assert f"{TEXT_COLUMN}\\x1b[2J" in log and no_raw_escapes(log)
        assert "\\x1b" in screen_text(app)


def test_command_line_advice_is_reworded_for_the_app():
    from core.data.sources import _hub_error
    from core.training.model import OFFLINE_HINT
    from tui.safe import for_app

    assert "--" not in for_app(f"cannot reach the Hugging Face Hub to download model 'x'; {OFFLINE_HINT}")
    assert "model field (F2)" in for_app(f"cannot reach the Hub; {OFFLINE_HINT}")
    said = for_app(str(_hub_error("x", ConnectionError("down"))))
    assert "source field (F1)" in said and "--dataset" not in said
    assert for_app("no text column found; columns are: a, b; name one with --text-columns") == \
        "no text column found; columns are: a, b; name it in the text columns field (F1)"
    assert "--output-dir pointing to another runs folder" in for_app("the disk holding /x is full; free some space "
                                                                      "or choose another --output-dir")
