"""The dataset screen: load a file through the UI, switch splits, see balance and lengths, handle bad input."""

from __future__ import annotations

import contextlib
import io
import shutil

import pytest
from rich.console import Console
from textual.widgets import Input, Static, Tabs
from textual.worker import WorkerFailed

from tui.screens.dataset_screen import DatasetScreen
from tui.widgets.dataset_views import SampleRows
from tui.widgets.histogram import LengthHistogram


@pytest.fixture()
def local_reviews(reviews_csv, tmp_path, monkeypatch):
    """reviews.csv copied into the working directory, so the UI can name it without a tmp path."""
    shutil.copy(reviews_csv, tmp_path / "reviews.csv")
    monkeypatch.chdir(tmp_path)
    return "reviews.csv"


def _text(screen, selector: str) -> str:
    """A Static's content as plain text (strings and rich tables alike)."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(screen.query_one(selector, Static).content, soft_wrap=True)
    return console.export_text()


def _errors(app) -> list[str]:
    return [n.message for n in app.seen_notifications if n.severity == "error"]


async def _type(pilot, selector: str, text: str, submit: bool = False) -> None:
    widget = pilot.app.screen.query_one(selector, Input)
    widget.value = ""
    widget.focus()
    await pilot.press(*text, *(["enter"] if submit else []))


async def _load(pilot, source: str, text_columns: str = "", label_column: str = "") -> None:
    """Fill the column inputs, type the source and press Enter, then wait for the load."""
    pilot.app.screen.query_one("#text-columns", Input).value = text_columns
    pilot.app.screen.query_one("#label-column", Input).value = label_column
    await _type(pilot, "#source", source, submit=True)
    await pilot.pause()  # let the Submitted handler start the worker
    with contextlib.suppress(WorkerFailed):  # a failed load is reported by the screen, checked by the tests
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_loading_a_csv_shows_rows_balance_lengths_and_sets_config(make_app, local_reviews):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, DatasetScreen)
        assert screen.query_one("#source", Input).value == app.config.dataset  # prefilled from the config
        await _load(pilot, local_reviews)
        assert not _errors(app)
        assert app.config.dataset == "reviews.csv"
        assert app.dataset is not None and app.dataset.rows == 300
        table = screen.query_one("#rows-table", SampleRows)
        assert app.dataset.stats.rows["train"] == 210 and table.row_count == SampleRows.LIMIT == 200
        assert {str(table.get_row_at(i)[0]) for i in range(table.row_count)} == {"negative", "positive"}
        balance = _text(screen, "#balance")
        assert "negative" in balance and "positive" in balance and "validation" in balance
        assert screen.query_one("#histogram", LengthHistogram).display
        max_length = app.config.max_length
        assert f"longer than max_length {max_length} tokens" in _text(screen, "#truncation")
        assert "300 rows read" in _text(screen, "#cleaning")
        assert "label column auto-detected: label" in _text(screen, "#notes")

        await pilot.press("ctrl+n")  # next split
        assert screen.query_one("#split-tabs", Tabs).active == "validation"
        assert table.row_count == 45

        app.config = app.config.replace(max_length=8)  # edited on F2: the truncated share follows
        await pilot.pause()
        share = app.dataset.stats.truncated_at(8)
        assert f"{share:.1%} of reviews are longer than max_length 8" in _text(screen, "#truncation")


async def test_explicit_columns_are_used_and_a_wrong_label_column_names_the_columns(make_app, local_reviews):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(pilot, local_reviews, text_columns="text", label_column="label")
        assert app.config.text_columns == ("text",) and app.config.label_column == "label"
        assert "auto-detected" not in _text(app.screen, "#notes")
        loaded = app.dataset

        await _load(pilot, local_reviews, label_column="stars")
        errors = _errors(app)
        assert errors and "label column 'stars' not found; columns are: text, label" in errors[-1]
        assert app.dataset is loaded and app.config.label_column == "label"
        assert not app.screen.query_one("#dataset-main").loading


async def test_missing_file_keeps_the_previous_dataset(make_app, local_reviews):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(pilot, local_reviews)
        loaded, config = app.dataset, app.config
        await _load(pilot, "missing.csv")
        assert any("not found: missing.csv" in e for e in _errors(app))
        assert app.dataset is loaded and app.config == config
        assert app.screen.query_one("#rows-table", SampleRows).row_count == 200
        status = _text(app.screen, "#dataset-status").splitlines()
        assert status[0] == "missing.csv was not loaded: the dataset is still reviews.csv (as on F2)"
        assert status[1].startswith("reviews.csv:")


async def test_after_a_failed_load_f1_and_f2_show_the_same_dataset(make_app, local_reviews, tiny_config):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(pilot, "missing.csv", label_column="stars")  # nothing loaded before
        assert any("not found: missing.csv" in e for e in _errors(app))
        screen = app.screen
        assert screen.query_one("#source", Input).value == app.config.dataset == tiny_config.dataset
        assert screen.query_one("#label-column", Input).value == ""  # the config's: auto-detect
        status = _text(screen, "#dataset-status")
        assert status.startswith(f"missing.csv was not loaded: the dataset is still {tiny_config.dataset} (as on F2)")
        await pilot.press("f2")
        await pilot.pause()
        assert app.screen.query_one("#field-dataset", Input).value == tiny_config.dataset


async def test_without_the_tokenizer_character_lengths_are_shown_with_a_note(make_app, local_reviews, tiny_config,
                                                                             tmp_path):
    app = make_app(tiny_config.replace(model=str(tmp_path / "no-model")))
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(pilot, local_reviews)
        assert app.dataset is not None and app.dataset.stats.tokens is None
        assert "which could not be loaded: model folder not found" in _text(app.screen, "#notes")
        assert "token lengths need the tokenizer of the model set on F2" in _text(app.screen, "#truncation")


def test_snapshot_after_loading(snap_compare, make_app, local_reviews):
    async def load(pilot):
        await _load(pilot, local_reviews)
        pilot.app.screen.query_one("#source", Input).blur()  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=load)


async def test_loading_twice_reloads(make_app, local_reviews):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(pilot, local_reviews)
        first = app.dataset
        await _load(pilot, local_reviews)
        assert app.dataset is not first and app.dataset.rows == first.rows
        assert app.is_running and not _errors(app)


def test_histogram_ticks_are_whole_numbers_from_zero():
    from tui.widgets.histogram import integer_ticks

    assert integer_ticks(403) == [0, 200, 400] and integer_ticks(3) == [0, 1, 2, 3]
    assert all(isinstance(t, int) for t in integer_ticks(57))


async def test_empty_histogram_bins_draw_nothing():
    """A bin no review falls in is a gap, not a cell on the 0 row."""
    import re

    from textual.app import App

    from core.data.stats import LengthStats
    from tui.widgets.histogram import LengthHistogram

    class Host(App):
        def compose(self):
            yield LengthHistogram()

    lengths = LengthStats.of([10] * 50 + [90] * 50, bins=8)  # two full bins, six empty between them
    async with Host().run_test(size=(60, 14)) as pilot:
        chart = pilot.app.query_one(LengthHistogram)
        chart.show_lengths(lengths, "tokens")
        await pilot.pause()
        plain = re.sub(r"\x1b\[[0-9;]*m", "", chart.plt.build())
        rows = [line for line in plain.splitlines() if "┤" in line]
        zero_row = rows[-1].split("┤", 1)[1]
        assert zero_row.strip().startswith("█") and "█" in zero_row  # the full bins reach the 0 row
        middle = zero_row[len(zero_row) // 4: 3 * len(zero_row) // 4]
        assert "█" not in middle  # the empty bins between them draw nothing
