"""The report's first lines about a run: name, status, model and data, and what is wrong or can be done."""

from __future__ import annotations

from pathlib import Path

from textual.content import Content

from core.format import format_event, format_kept, printable, short_name
from core.runs import layout
from core.runs.layout import LIVE, RunStatus
from core.runs.report import RunReport
from tui.safe import sentence

STATUS_STYLES = {RunStatus.FINISHED: "$success", RunStatus.STOPPED: "$warning", RunStatus.RUNNING: "$accent",
                 RunStatus.STARTING: "$accent", RunStatus.FAILED: "$error", RunStatus.INTERRUPTED: "$error",
                 RunStatus.UNREADABLE: "$error", RunStatus.PRUNED: "$warning"}
RESUMABLE = (RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED)


def stop_line(run_dir: Path) -> str | None:
    """How a stopped run ended, worded by core (whether a model was saved and tested); None if it has no stop."""
    from core.events import TrainingStopped, read_events

    stops = [e for e in read_events(Path(run_dir) / layout.EVENTS) if isinstance(e, TrainingStopped)]
    return format_event(stops[-1]) if stops else None


def summary_head(report: RunReport, stopped: str | None, live_here: bool) -> Content:
    """The head lines; `stopped` is `stop_line` of the run, `live_here` whether this app trains it."""
    info = report.info
    head = Content.assemble((printable(info.name), "bold"), "  ",
                            (printable(info.status), STATUS_STYLES.get(info.status, "")),
                            printable(f"  ·  {short_name(info.model)} on {short_name(info.dataset)}  ·  {info.device}"))
    problems = [info.error] if info.error and info.status != RunStatus.FINISHED else []
    if info.status == RunStatus.STOPPED and stopped:
        problems.append(f"{sentence(stopped)}.")
    resume = ("Press R to resume it from its last checkpoint." if report.resumable else
              "It wrote no checkpoint, so it cannot be resumed: start a new run.")
    if info.status == RunStatus.INTERRUPTED:
        problems.append(f"Its process ended without saying so (killed, or the machine went down). {resume}")
    elif info.status in RESUMABLE:
        problems.append(resume)
    elif info.status in LIVE and live_here:
        problems.append("Training in this app: F3 shows it live.")
    elif info.status in LIVE:
        problems.append("Training in another process: press a to follow it live.")
    problems += [n for n in report.notes if n not in problems]
    kept = format_kept(report.kept) if info.has_model else None
    if kept:
        problems.insert(0, sentence(kept) + ("" if report.test else "; not tested yet: sentitune evaluate RUN "
                                                                   "tests it and records the result"))
    if not problems:
        return head
    style = "$error" if info.status in (RunStatus.FAILED, RunStatus.UNREADABLE) else "$text-muted"
    return Content("\n").join([head, *[Content.styled(printable(p), style) for p in problems]])
