"""F4's sweep tab: the runs of the selected run's sweep, best validation F1 first, with what differs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from tui.safe import cell, plain

NOT_IN_A_SWEEP = ("This run is not part of a sweep. Start one on F2 with a list in a field (learning_rate "
                  "2e-5, 5e-5, 1e-4), or with sentitune sweep --grid learning_rate=2e-5,5e-5.")


def _score(value: Any) -> str:
    return f"{value * 100:.1f}" if isinstance(value, (int, float)) else "—"


class SweepPane(Vertical):
    """The sweep table; Enter on a row asks the report to open that run."""

    DEFAULT_CSS = """
    SweepPane #sweep-head { height: auto; color: $text-muted; }
    SweepPane DataTable { height: 1fr; }
    """

    class Open(Message):
        def __init__(self, run: Path) -> None:
            super().__init__()
            self.run = run

    def compose(self) -> ComposeResult:
        yield Static(NOT_IN_A_SWEEP, id="sweep-head")
        yield DataTable(id="sweep-runs", cursor_type="row", zebra_stripes=True)

    def show(self, found: tuple[Path, dict[str, Any]] | None, current: Path | None) -> None:
        from core.training.sweep import ranked, varying

        table = self.query_one(DataTable)
        table.clear(columns=True)
        if found is None:
            self.query_one("#sweep-head", Static).update(NOT_IN_A_SWEEP)
            return
        path, record = found
        best = ranked(record)
        order = best + [p for p in record["points"] if p not in best]
        names = varying(record) or list(record["points"][0]["settings"])
        finished = sum(p.get("status") == "finished" for p in record["points"])
        self.query_one("#sweep-head", Static).update(plain(
            f"{path.stem}: {record['status']}, {finished} of {len(record['points'])} runs finished. Ranked by "
            "validation F1 (★ best); test scores are shown but never used to choose. Enter opens a run."))
        table.add_column("", key="mark")
        for name in names:
            table.add_column(name, key=f"setting-{name}")
        for label in ("status", "val F1", "val acc", "test acc", "run"):
            table.add_column(label, key=label)
        for point in order:
            run = Path(point["run_dir"]) if point.get("run_dir") else None
            mark = "★" if best and point is best[0] else ("▸" if run is not None and run == current else "")
            table.add_row(mark, *[cell(str(point["settings"].get(n, "")), 16) for n in names],
                          cell(str(point.get("status", "")), 12), _score(point.get("val_f1")),
                          _score(point.get("val_accuracy")), _score(point.get("test_accuracy")),
                          cell(run.name if run else "—", 44), key=str(run) if run else f"pending-{id(point)}")

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key and not key.startswith("pending-"):
            self.post_message(self.Open(Path(key)))
