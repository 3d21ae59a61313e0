"""F1: pick a dataset and its columns, then preview rows, label balance, lengths and what cleaning dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Static, Tab, Tabs
from textual.worker import Worker, WorkerState

from core.config import TrainConfig, format_value
from core.errors import ConfigError
from core.format import printable
from tui.safe import SafeInput, notify_error, plain
from tui.screens.base import BaseScreen
from tui.widgets.dataset_views import SampleRows, balance_table
from tui.widgets.histogram import LengthHistogram

if TYPE_CHECKING:  # importing core.data at start-up would pull pandas into the first screen
    from core.data.stats import Preview

SPLITS = ("train", "validation", "test")
COLUMN_FIELDS = {"source": "dataset", "text-columns": "text_columns", "label-column": "label_column"}
EMPTY_HINT = "No dataset loaded yet: type a hub dataset name or a file path and press Enter."


class LoadStage(Message):
    """What the loading thread is doing now ("reading reviews.csv…")."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class DatasetScreen(BaseScreen):
    """Load a hub dataset or local file with the current config and show what training will see."""

    BINDINGS = [
        Binding("ctrl+l", "load", "Load", priority=True),
        Binding("ctrl+n", "next_split", "Next split", priority=True),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    DEFAULT_CSS = """
    DatasetScreen #source-bar { height: 3; }
    DatasetScreen #source-bar Input { border-title-color: $text-muted; }
    DatasetScreen #source { width: 1fr; }
    DatasetScreen #text-columns { width: 22; }
    DatasetScreen #label-column { width: 18; }
    DatasetScreen #load { min-width: 8; width: 8; }
    DatasetScreen #dataset-body { height: 1fr; padding: 0 1; }
    DatasetScreen #dataset-status { color: $text-muted; }
    DatasetScreen #dataset-main { height: auto; min-height: 5; }
    DatasetScreen.-wide #dataset-main { layout: horizontal; }
    DatasetScreen.-wide #rows-pane { width: 1fr; margin-right: 1; }
    DatasetScreen.-wide #stats-pane { width: 46; }
    DatasetScreen #rows-pane, DatasetScreen #stats-pane { height: auto; }
    DatasetScreen #split-tabs { height: 2; }
    DatasetScreen #rows-table { height: 14; }
    DatasetScreen #histogram { height: 11; }
    DatasetScreen #row-text { height: auto; max-height: 6; padding: 0 1; background: $boost; }
    DatasetScreen #truncation { color: $warning; }
    DatasetScreen .empty #dataset-main, DatasetScreen .empty .loaded-only { display: none; }
    DatasetScreen .loading #dataset-main { display: block; }
    """

    def compose_body(self) -> ComposeResult:
        config = self.app.config
        with Horizontal(id="source-bar"):
            yield self._input("source", "source: hub name or file", config)
            yield self._input("text-columns", "text columns", config, placeholder="auto-detect")
            yield self._input("label-column", "label column", config, placeholder="auto-detect")
            yield Button("Load", id="load", variant="primary")
        with VerticalScroll(id="dataset-body", classes="empty"):
            yield Static(EMPTY_HINT, id="dataset-status")
            with Vertical(id="dataset-main"):
                with Vertical(id="rows-pane"):
                    yield Tabs(*(Tab(s, id=s) for s in SPLITS), id="split-tabs")
                    yield SampleRows(id="rows-table")
                    yield Static(id="row-text")  # the highlighted review in full
                with Vertical(id="stats-pane"):
                    yield Static(classes="section-title", id="balance-title")
                    yield Static(id="balance")
                    yield LengthHistogram(id="histogram")
                    yield Static(id="truncation")
            yield Static("Cleaning", classes="section-title loaded-only")
            yield Static(id="cleaning", classes="loaded-only")
            yield Static("Notes", classes="section-title loaded-only")
            yield Static(id="notes", classes="loaded-only")

    def _input(self, id: str, title: str, config: TrainConfig, placeholder: str = "") -> SafeInput:
        field = COLUMN_FIELDS[id]
        widget = SafeInput(format_value(field, getattr(config, field)), placeholder=placeholder, id=id)
        widget.border_title = title
        return widget

    def on_mount(self) -> None:
        self._failed: str | None = None  # the source of the last load, when it failed
        self.watch(self.app, "dataset", self._show_dataset)
        self.watch(self.app, "config", self._config_changed, init=False)
        self.query_one("#source", SafeInput).focus()

    # ------------------------------------------------------------ loading

    @on(SafeInput.Submitted)
    @on(Button.Pressed, "#load")
    def action_load(self) -> None:
        """Load the source with the typed columns, in a thread."""
        raw = {field: self.query_one(f"#{id}", SafeInput).value for id, field in COLUMN_FIELDS.items()}
        try:
            config = TrainConfig.from_dict(raw, base=self.app.config)
        except ConfigError as err:
            notify_error(self, err)
            return
        self._failed = None
        self.query_one("#dataset-body").add_class("loading")
        self.query_one("#dataset-main").loading = True
        self.query_one("#load", Button).disabled = True
        self.query_one("#dataset-status", Static).update(plain(f"loading {config.dataset}…"))
        self._load(config)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dataset")
    def _load(self, config: TrainConfig) -> tuple[TrainConfig, Preview]:
        from core.data.sources import is_local_source
        from core.data.stats import build_preview
        from core.training.model import load_tokenizer

        self.post_message(LoadStage(f"reading {config.dataset}…" if is_local_source(config.dataset)
                                    else f"loading {config.dataset} from the Hub… (a download can take a while)"))
        return config, build_preview(config, load_tokenizer, lambda text: self.post_message(LoadStage(text)))

    def on_load_stage(self, message: LoadStage) -> None:
        if self.query_one("#dataset-main").loading:
            self.query_one("#dataset-status", Static).update(plain(message.text))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "dataset" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.query_one("#dataset-body").remove_class("loading")
        self.query_one("#dataset-main").loading = False
        self.query_one("#load", Button).disabled = False
        if event.state == WorkerState.SUCCESS:
            loaded_config, dataset = worker.result
            # Only the source and columns come from this screen; keep edits made elsewhere meanwhile.
            self.app.config = self.app.config.replace(**{f: getattr(loaded_config, f) for f in COLUMN_FIELDS.values()})
            self.app.dataset = dataset
            return
        notify_error(self, worker.error, title="Loading failed", timeout=10)
        # One source of truth: the fields go back to the config's dataset, the one F2 shows and a run uses;
        # the message names what failed, and the status line which dataset this is.
        self._failed = self.query_one("#source", SafeInput).value.strip()
        for id, field in COLUMN_FIELDS.items():
            self.query_one(f"#{id}", SafeInput).value = format_value(field, getattr(self.app.config, field))
        self._show_status(self.app.dataset)

    # ------------------------------------------------------------ showing

    def _show_dataset(self, dataset: Preview | None) -> None:
        self._show_status(dataset)
        if dataset is None:
            return
        data, stats = dataset.data, dataset.stats
        self.query_one("#dataset-body").remove_class("empty")
        self._show_split()
        self.query_one("#balance-title", Static).update("Label balance")
        self.query_one("#balance", Static).update(balance_table(stats))
        self._show_lengths()
        self.query_one("#cleaning", Static).update(plain(" · ".join(data.cleaning.lines())))
        notes = [f"text: {' + '.join(data.text_columns)} · label: {data.label_column}", *data.notes]
        if dataset.token_note:
            notes.append(dataset.token_note)
        self.query_one("#notes", Static).update(plain("\n".join(notes)))

    def _show_status(self, dataset: Preview | None) -> None:
        status = self.query_one("#dataset-status", Static)
        failed = Content.styled(printable(f"{self._failed} was not loaded: the dataset is still "
                                          f"{self.app.config.dataset} (as on F2)"), "bold $warning")
        if dataset is None:
            status.update(Content("\n").join([failed, Content(EMPTY_HINT)]) if self._failed else EMPTY_HINT)
            return
        rows = dataset.stats.rows
        split = self.query_one("#split-tabs", Tabs).active or "train"
        shown = min(rows[split], SampleRows.LIMIT)
        text = plain(f"{dataset.source}: {dataset.rows} clean rows · first {shown} of {rows[split]} {split} rows")
        if dataset.config is not None and dataset.stale(self.app.config):
            text = Content("\n").join([text, Content.styled(
                "Settings changed since this preview was loaded: press Load (ctrl+l) to refresh it.", "bold $warning")])
        status.update(Content("\n").join([failed, text]) if self._failed else text)

    def _show_split(self) -> None:
        dataset = self.app.dataset
        if dataset is None:
            return
        split = self.query_one("#split-tabs", Tabs).active or "train"
        self.query_one("#rows-table", SampleRows).show(dataset.data.splits[split], dataset.data.label_names)
        self._show_status(dataset)

    def _show_lengths(self) -> None:
        dataset = self.app.dataset
        if dataset is None:
            return
        stats, max_length = dataset.stats, self.app.config.max_length
        histogram = self.query_one("#histogram", LengthHistogram)
        truncation = self.query_one("#truncation", Static)
        if stats.tokens is None:
            histogram.show_lengths(stats.chars, "characters")
            truncation.update("token lengths need the tokenizer of the model set on F2, which could not be loaded "
                              "(see the notes); characters are shown instead")
            return
        histogram.show_lengths(stats.tokens, "tokens", max_length)
        share = stats.truncated_at(max_length)
        text = (f"{share:.1%} of reviews are longer than max_length {max_length} tokens and get truncated"
                if share else f"no review is longer than max_length {max_length} tokens: none is truncated")
        if stats.sampled:
            text += f" (lengths from {stats.sampled:,} reviews drawn at random)"
        truncation.update(text)

    def on_data_table_row_highlighted(self, event: SampleRows.RowHighlighted) -> None:
        """Show the highlighted review whole under the table (the table clips it to its width)."""
        table = self.query_one("#rows-table", SampleRows)
        text = table.text_at(event.cursor_row)
        self.query_one("#row-text", Static).update(plain(text) if text is not None else "")

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        self._show_split()

    def action_next_split(self) -> None:
        self.query_one("#split-tabs", Tabs).action_next_tab()

    def _config_changed(self, old: TrainConfig, new: TrainConfig) -> None:
        """Follow config edits made elsewhere (F2, a preset, a TOML file): one source of truth for the data.

        A field keeps what is being typed into it only while this screen is shown and the field has focus.
        """
        for id, field in COLUMN_FIELDS.items():
            widget = self.query_one(f"#{id}", SafeInput)
            if getattr(old, field) != getattr(new, field) and not (self.is_current and widget.has_focus):
                widget.value = format_value(field, getattr(new, field))
        if old.dataset != new.dataset:
            self._failed = None  # another dataset was chosen: the failed load is old news
        if old.max_length != new.max_length:
            self._show_lengths()
        self._show_status(self.app.dataset)
