"""Rich renderables for the report: test metrics and baseline gain, confusion matrix, per-class and per-epoch tables."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.table import Column, Table
from rich.text import Text

from core.format import printable, sentence
from core.runs.layout import RunStatus
from core.runs.report import RunReport, format_accuracy, shown_value
from tui.safe import cell


def pct(value: float | None) -> str:
    """A 0..1 metric as a percentage."""
    return "—" if value is None else f"{value:.1%}"


def points(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f} pts"


def _table(title: str | None = None, *columns: str | Text) -> Table:
    headers = [c if isinstance(c, str) else Column(header=c) for c in columns]  # Text: user label names
    table = Table(*headers, title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  header_style="bold", pad_edge=False, padding=(0, 1))
    for column in table.columns[1:]:
        column.justify = "right"
    return table


def scores_block(report: RunReport) -> RenderableType:
    """Test accuracy with its interval and review count, other test metrics, and the baseline next to them."""
    test = report.test
    if not test:
        if report.info.status == RunStatus.STOPPED:
            return Text("No test metrics: the run was stopped before its model was tested.", style="italic")
        return Text("No test metrics yet: the run is scored on the test split when training ends.", style="italic")
    lines = [Text("Test split", style="bold"), Text(format_accuracy(test))]
    n = report.test_n
    others = "  ".join(f"{name} {pct(test.get(key))}" for key, name in
                       (("precision", "precision"), ("recall", "recall"), ("f1", "F1")) if key in test)
    lines.append(Text((f"{n} reviews   " if n is not None else "") + others))
    baseline = report.baseline
    if baseline:
        table = _table("Before vs after fine-tuning", "", "untuned", "fine-tuned", "gain")
        for key, name in (("accuracy", "accuracy"), ("f1", "F1")):
            table.add_row(name, pct(baseline.get(key)), pct(test.get(key)), points(report.gain.get(key)))
        lines += [Text(""), table]
        sample = baseline_sample(baseline)
        if sample:
            lines.append(Text(sample, style="italic"))
    else:
        lines.append(Text("No baseline: the run was trained with baseline = false.", style="italic"))
    return Group(*lines)


def baseline_sample(baseline: dict[str, Any]) -> str | None:
    """How the untuned model was scored when it saw only a sample of the test split, else None."""
    n, total = baseline.get("n"), baseline.get("sampled_from")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, total)) or n >= total:
        return None
    line = f"untuned model scored on {n:,} of {total:,} test reviews (a seeded sample)"
    if isinstance(baseline.get("accuracy"), (int, float)):
        line += f", {format_accuracy(baseline)}"
    return line


def confusion_table(matrix: list[list[int]], labels: list[str], title: str | None = "Confusion matrix") -> Table:
    """Rows are true labels, columns predicted labels; the diagonal (correct) in bold."""
    table = _table(title, "true \\ predicted", *[cell(label, 20) for label in labels])
    for i, (label, row) in enumerate(zip(labels, matrix)):
        table.add_row(cell(label, 20), *[Text(str(v), style="bold" if i == j else "") for j, v in enumerate(row)])
    return table


def per_class_table(per_class: dict[str, dict[str, Any]]) -> Table:
    table = _table("Per class", "class", "precision", "recall", "F1", "support")
    for label, m in per_class.items():
        table.add_row(cell(label, 20), pct(m.get("precision")), pct(m.get("recall")), pct(m.get("f1")),
                      cell(m.get("support", "")))
    return table


def ece_range(low, high) -> str:
    """' (95% CI 1.2–3.4%)' for an ECE's bootstrap interval, or '' for runs recorded without one."""
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return ""
    return f" (95% CI {low:.1%}–{high:.1%})"


def calibration_block(report: RunReport) -> RenderableType | None:
    """How far to trust the confidences: the test ECE (before and after the temperature) and a reliability
    diagram, one row per confidence bin: a bar of how often the model was right, ┃ where it said it would be."""
    test, calibration = report.test or {}, report.calibration
    if not report.reliability or not isinstance(test.get("ece"), (int, float)):
        return None
    lines = [Text("Confidence", style="bold")]
    measured = f"ECE {pct(test['ece'])}{ece_range(test.get('ece_ci_low'), test.get('ece_ci_high'))}"
    if calibration and isinstance(calibration.get("temperature"), (int, float)):
        before = calibration.get("ece_before")
        lines.append(Text(f"temperature {calibration['temperature']:.2f} (fitted on validation): "
                          f"ECE {pct(before)}{ece_range(*(calibration.get('ece_before_ci') or [None, None]))} → "
                          f"{measured[4:]}"))
    elif calibration:  # calibrate = true, but the validation data did not support a temperature
        lines.append(Text(f"{measured}; no temperature: {calibration.get('reason') or 'not applied'}"))
    else:
        lines.append(Text(f"{measured} (not calibrated: calibrate = false)"))
    if calibration and calibration.get("reason") and isinstance(calibration.get("temperature"), (int, float)):
        lines.append(Text(str(calibration["reason"]), style="italic"))
    width = 20
    table = _table(None, "confidence", "right", "reviews", Text("0%" + " " * (width - 6) + "100%"))
    for b in report.reliability:
        right = round(b["accuracy"] * width)
        said = min(round(b["confidence"] * width), width - 1)
        bar = ["█" if i < right else " " for i in range(width)]
        bar[said] = "┃"
        table.add_row(f"{b['low']:.0%}–{b['high']:.0%}", pct(b["accuracy"]), str(b["count"]),
                      Text("".join(bar), style="green" if abs(b["accuracy"] - b["confidence"]) < 0.1 else "yellow"))
    table.columns[3].justify = "left"
    lines += [table, Text("bar: share right · ┃: the confidence it gave", style="italic")]
    return Group(*lines)


def coach_block(report: RunReport) -> RenderableType | None:
    """What the coach noticed during the run, each with its advice; None for a run it had nothing to say about."""
    if not report.diagnostics:
        return None
    lines = [Text("Coach", style="bold")]
    for d in report.diagnostics:
        lines.append(Text.assemble((f"⚠ {d.kind.replace('_', ' ')}", "yellow"), f" (step {d.step}): ",
                                   printable(d.message), ". ", (printable(sentence(d.advice)), "italic")))
    return Group(*lines)


def summary_tables(report: RunReport) -> RenderableType:
    """Test metrics with the baseline, the confusion matrix and per-class metrics, wrapped to the width."""
    parts: list[RenderableType] = [scores_block(report)]
    test = report.test or {}
    if test.get("confusion_matrix"):
        labels = list(test.get("label_names") or report.label_names)
        parts.append(confusion_table(test["confusion_matrix"], labels))
    if test.get("per_class"):
        parts.append(per_class_table(test["per_class"]))
    calibration = calibration_block(report)
    if calibration is not None:
        parts.append(calibration)
    if report.phases:
        parts.append(phases_table(report.phases))
    coach = coach_block(report)
    columns = Columns(parts, padding=(1, 4))
    return columns if coach is None else Group(coach, Text(""), columns)  # the coach's lines span the width


def phases_table(phases: dict[str, float]) -> RenderableType:
    """Where the run's time went: seconds and share of the wall time per stage."""
    from core.format import format_seconds
    from core.training.phases import NAMES

    wall = float(phases.get("wall") or 0.0)
    table = _table("Where the time went", "stage", "time", "share")
    for key, seconds in phases.items():
        if key == "wall" or not isinstance(seconds, (int, float)):
            continue
        table.add_row(cell(NAMES.get(key, key)), format_seconds(seconds), f"{seconds / wall:.0%}" if wall else "—")
    table.add_row(Text("total", style="bold"), format_seconds(wall), "")
    return table


def _epoch(value: Any) -> str:
    value = float(value)
    return f"{value:g}" if value.is_integer() else f"{value:.2f}"


def validation_table(report: RunReport) -> RenderableType:
    """One row per evaluation on the validation split; the kept one (best macro F1) marked."""
    if not report.validation:
        return Text("No validation yet: the model is evaluated after each epoch.", style="italic")
    table = _table("Validation per evaluation (★ = the model kept: best macro F1)",
                   "epoch", "step", "loss", "accuracy", "precision", "recall", "F1")
    for i, row in enumerate(report.validation):
        best = i == report.best
        loss = row.get("loss")
        table.add_row(("★ " if best else "") + _epoch(row.get("epoch", 0)), str(row.get("step", "")),
                      "—" if loss is None else f"{loss:.4f}", pct(row.get("accuracy")), pct(row.get("precision")),
                      pct(row.get("recall")), pct(row.get("f1")), style="bold" if best else None)
    return table


def diff_table(rows: list[tuple[str, Any, Any]], a_name: str, b_name: str) -> RenderableType:
    """Config fields whose values differ between run A and run B."""
    if not rows:
        return Text("The two runs used the same configuration.", style="italic")
    table = _table("Configuration differences", "field", cell(f"A {a_name}"), cell(f"B {b_name}"))
    for column in table.columns[1:]:
        column.justify = "left"
    for field, a, b in rows:
        table.add_row(cell(field), cell(shown_value(a)), cell(shown_value(b)))
    return table
