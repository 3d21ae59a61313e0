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

    path: Path | None = None
    """The sweep shown, when it has runs left to do and is not running: R goes on with it."""

    def compose(self) -> ComposeResult:
        yield Static(NOT_IN_A_SWEEP, id="sweep-head")
        yield DataTable(id="sweep-runs", cursor_type="row", zebra_stripes=True)

    def show(self, found: tuple[Path, dict[str, Any]] | None, current: Path | None) -> None:
        from core.experiments.record import ranked, score, tied_with_best, varying
        from core.format import number

        table = self.query_one(DataTable)
        # A refresh of the same sweep (a run ended, the runs folder changed) keeps the highlighted run.
        keep = table.cursor_row if found is not None and found[0] == getattr(self, "_shown", None) else 0
        self._shown = found[0] if found is not None else None
        table.clear(columns=True)
        self.path = None
        if found is None:
            self.query_one("#sweep-head", Static).update(NOT_IN_A_SWEEP)
            return
        path, record = found
        best = ranked(record)
        order = best + [p for p in record["points"] if p not in best]
        names = varying(record) or list(record["points"][0]["settings"])
        finished = sum(p.get("status") == "finished" for p in record["points"])
        ties = tied_with_best(record)
        tie = f" {len(ties)} runs tie for best (★=): the sweep cannot tell them apart." if len(ties) > 1 else ""
        left = sum(p.get("status") not in ("finished", "failed", "pruned") for p in record["points"])
        pruned = sum(p.get("status") == "pruned" for p in record["points"])
        if pruned:
            tie += (f" {pruned} pruned: stopped early, behind the median of the finished runs at the same quarter epoch "
                    "(their figures are from then; not ranked).")
        if left and record["status"] not in ("running", "starting"):
            self.path = path
            tie += f" {left} run{'s' if left != 1 else ''} left to do: R goes on with the sweep."
        self.query_one("#sweep-head", Static).update(plain(
            f"{path.stem}: {record['status']}, {finished} of {len(record['points'])} runs finished. Ranked by "
            f"validation macro F1 (★ best); test scores are shown but never used to choose.{tie} Enter opens a run."))
        table.add_column("", key="mark")
        for name in names:
            table.add_column(name, key=f"setting-{name}")
        for label in ("status", "val macro-F1", "val acc", "test acc", "run"):
            table.add_column(label, key=label)
        for point in order:
            run = Path(point["run_dir"]) if point.get("run_dir") else None
            mark = ("★=" if len(ties) > 1 else "★") if any(point is t for t in ties) else (
                "▸" if run is not None and run == current else "")
            table.add_row(mark, *[cell(number(point["settings"].get(n, "")), 16) for n in names],
                          cell(str(point.get("status", "")), 12), _score(score(point) if any(point is b for b in best) or point.get("status") == "pruned" else None),
                          _score(point.get("val_accuracy")), _score(point.get("test_accuracy")),
                          cell(run.name + (" (folder gone)" if point.get("missing") else "") if run else "—", 44),
                          key=str(run) if run and not point.get("missing") else f"pending-{id(point)}")
        if 0 < keep < table.row_count:
            table.move_cursor(row=keep, animate=False)

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key and not key.startswith("pending-"):
            self.post_message(self.Open(Path(key)))
