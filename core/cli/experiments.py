"""Commands that search for settings: lr-find (a learning-rate range test) and sweep (one run per point)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from core.cli.output import say
from core.cli.parser import CONFIG_FLAGS, config_from_args
from core.errors import ConfigError

SWEEP_ADVICE = "1e-5,3e-5,1e-4"  # the usual fine-tuning range, when the range test cannot say


def cmd_lr_find(args: argparse.Namespace) -> int:
    from core.experiments.lr_find import check_range, default_steps, find_learning_rate
    from core.training.stopping import StoppedEarly

    if args.steps is None:
        args.steps = default_steps(args.start_lr, args.end_lr)
    check_range(args.steps, args.start_lr, args.end_lr)
    config = config_from_args(args)
    if args.printer is not None:
        args.printer.stage = "lr-find"  # what Ctrl+C says it does
    tty = sys.stderr.isatty()

    def on_step(step: int, steps: int, lr: float, loss: float) -> None:
        if args.json:
            print(json.dumps({"step": step, "learning_rate": lr, "loss": loss if math.isfinite(loss) else None}),
                  flush=True)
        elif tty or step % 10 == 0:
            end = "\r" if tty else "\n"
            print(f"step {step}/{steps}  learning rate {lr:.2e}  loss {loss:.4f}", end=end, file=sys.stderr, flush=True)

    try:
        finding = find_learning_rate(config, args.output_dir, steps=args.steps, start_lr=args.start_lr,
                                     end_lr=args.end_lr, on_step=on_step, stop_event=args.stop,
                                     on_stage=None if args.json else lambda detail: say(f"[lr-find] {detail}"))
    except StoppedEarly:
        say("lr-find stopped before its first step; nothing was saved", file=sys.stderr if args.json else None)
        return 0
    if args.json:
        found = finding.to_dict()  # non-finite losses as null
        print(json.dumps({key: found[key] for key in ("suggested_learning_rate", "method", "steepest_learning_rate",
                                                       "lowest_loss_learning_rate", "diverged", "stopped", "record")}
                         | {"curve": [{"learning_rate": lr, "loss": loss}
                                      for lr, loss in zip(found["learning_rates"], found["losses"])]},
                         allow_nan=False))
        return 0
    if tty:
        print(file=sys.stderr)
    if finding.stopped:
        say(f"stopped after {len(finding.losses)} of {args.steps} steps; the curve so far:")
    every = max(1, len(finding.losses) // 12)
    say("learning rate   smoothed loss")
    for lr, loss in list(zip(finding.learning_rates, finding.losses))[::every]:
        say(f"{lr:13.2e}   {loss:.4f}")
    if finding.suggested_learning_rate is None:
        say("no suggestion: the smoothed loss fell less than 5% over the range (noise, not learning); try more "
            "--steps or a wider range, or let three short runs decide: sentitune sweep ... "
            f"--grid learning_rate={SWEEP_ADVICE}")
    else:
        from core.format import number

        rounded = number(float(f"{finding.suggested_learning_rate:.2g}"))  # as the app's field takes it
        say(f"suggested learning rate: {rounded}, {finding.method}; lowest loss at "
            f"{number(finding.lowest_loss_learning_rate)}, steepest fall at {number(finding.steepest_learning_rate)}")
        say(f"train with it: sentitune train ... --learning-rate {rounded}")
        grid = ",".join(number(float(f"{finding.suggested_learning_rate * k:.2g}")) for k in (1, 3, 10))
        say(f"or let three short runs decide, from it up (the longer the test, the lower it reads): "
            f"sentitune sweep ... --grid learning_rate={grid}")
    if finding.record:
        say(f"curve saved in {finding.record}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.experiments import launch
    from core.experiments.plan import describe, parse_grid, plan_points
    from core.experiments.record import check_resumable, create_sweep, read_sweep, resolve_sweep
    from core.experiments.worker import LOCK_FD_VARIABLE, WORKER_VARIABLE, clear_stop, run_sweep

    existing = "--show" if args.show is not None else "--resume" if args.resume else "--join" if args.join else None
    if existing:
        given = [flag for flag, name in (("--grid", "grid"), ("--random", "random"), ("--trials", "trials"),
                                         ("--prune", "prune"), ("--config", "config")) if getattr(args, name, None)]
        given += [f"--{n.replace('_', '-')}" for n in CONFIG_FLAGS if getattr(args, n, None) is not None]
        if existing == "--show":
            given += [flag for flag, name in (("--detach", "detach"), ("--resume", "resume"), ("--join", "join"),
                                              ("--workers", "workers")) if getattr(args, name, None)]
        elif args.resume and args.join:
            given.append("--join")
        if given:
            raise ConfigError({"sweep": f"{existing} uses the sweep's own settings; drop {', '.join(given)} "
                                        "(or start a new sweep with them)"})
    if args.show == "":
        _print_sweeps(args.output_dir, args.json)
        return 0
    if args.show:
        _print_sweep(read_sweep(resolve_sweep(args.show, args.output_dir)), args.json)
        return 0
    if args.workers is not None:
        launch.worker_environments(args.workers, "cpu")  # a bad count is said before anything is written
    inherited = os.environ.pop(LOCK_FD_VARIABLE, None)  # a background worker: its starter took its lock
    name = os.environ.pop(WORKER_VARIABLE, None)
    if args.join and inherited:  # a background worker's own process: its starter checked the sweep
        path = resolve_sweep(args.join, args.output_dir)
    elif args.join:
        path = resolve_sweep(args.join, args.output_dir)
        launch.check_joinable(path)
        if args.workers is None and not args.detach:
            args.workers = 1  # a worker from this shell: one, here
    elif args.resume:
        path = resolve_sweep(args.resume, args.output_dir)
        check_resumable(path)
    else:
        config = config_from_args(args)
        grid = parse_grid(args.grid)
        points = plan_points(grid, args.random, seed=config.seed, trials=args.trials)
        from core.training.preflight import check_data, preflight

        preflight(config, args.output_dir)
        check_data(config)
        path = create_sweep(config, grid, points, args.output_dir, args.random, args.trials, args.prune)
    record = read_sweep(path)
    workers = args.workers if args.workers is not None else 1 if inherited else launch.default_workers()
    environments = launch.worker_environments(workers, record["base"].get("device", "auto"))
    if args.detach:
        log = launch.start_sweep_detached(path, workers, join=bool(args.join))
        if args.json:
            print(json.dumps({"sweep": str(path), "log": str(log), "workers": workers}))
        else:
            n = len(record["points"])
            say(f"sweep {path.stem} {'joined by' if args.join else 'started in the background with'} {workers} "
                f"worker{'s' if workers != 1 else ''} ({n} run{'s' if n != 1 else ''} in all); its log: {log}")
            say(f"see it: sentitune sweep --show {path.stem} · stop it: sentitune stop {path.stem}")
        return 0

    def on_point(k: int, n: int, point: dict) -> None:
        if args.json:
            print(json.dumps({"event": "SweepPoint", "sweep": str(path), "index": k, "of": n,
                              "settings": point["settings"]}), flush=True)
        else:
            say(f"== sweep {path.stem}: run {k} of {n}: {describe(point['settings'])}")

    children = []
    if workers > 1 and not inherited:  # the others in the background, this one here
        if not args.join:
            clear_stop(path)
        children = launch.spawn_workers(path, environments[1:], first_index=1)
        if not args.json:
            say(f"sweep {path.stem}: {workers} workers; the other {workers - 1} log beside it "
                f"({launch.log_path(path, 1).name}...)")
    if not inherited:
        launch.apply_here(environments[0])
    try:
        record = run_sweep(path, args.printer, on_point, args.stop,
                           lock_fd=int(inherited) if inherited and inherited.isdigit() else None,
                           name=name, join=bool(args.join or inherited or children))
    finally:
        if children and args.stop is not None and args.stop.is_set():
            _stop_others(path)
        launch.wait_for(children, None if args.json else say)
    if children:
        record = read_sweep(path)
    _print_sweep(record, args.json)
    return 0 if record["status"] in ("finished", "stopped", "running") else 1


def _stop_others(path) -> None:
    """Ctrl+C in a sweep of several workers: the others stop too."""
    from core.errors import CoreError
    from core.experiments.record import request_sweep_stop

    try:
        request_sweep_stop(path)
    except CoreError:
        pass  # they ended meanwhile


def _print_sweeps(root: str, as_json: bool) -> None:
    """Every sweep under the runs folder, newest first: status, runs done, the best point so far."""
    from core.errors import CoreError
    from core.experiments.plan import describe
    from core.experiments.record import list_sweeps, ranked, read_sweep, score, varying

    paths = list_sweeps(root)
    if not paths and not as_json:
        say(f"no sweeps in {root}; start one: sentitune sweep --grid learning_rate=2e-5,5e-5 ...")
    for path in paths:
        try:
            record = read_sweep(path)
        except CoreError as exc:
            print(json.dumps({"sweep": path.stem, "status": "unreadable", "error": str(exc)}) if as_json
                  else f"{path.stem}  unreadable: {exc}")
            continue
        points, best = record["points"], ranked(record)
        done = sum(p.get("status") == "finished" for p in points)
        pruned = sum(p.get("status") == "pruned" for p in points)
        if as_json:
            print(json.dumps({"sweep": path.stem, "status": record["status"], "runs": len(points), "finished": done,
                              "best": best[0] if best else None}))
            continue
        if best:
            shown = describe({n: best[0]["settings"].get(n) for n in varying(record) or best[0]["settings"]})
            top = f"best val macro-F1 {score(best[0]):.4f} ({shown})"
        else:
            top = "no scores yet"
        say(f"{path.stem}  {record['status']:<11} {done} of {len(points)} runs finished"
            + (f", {pruned} pruned" if pruned else "") + f"  {top}")


def _print_sweep(record: dict, as_json: bool) -> None:
    from core.experiments.record import ranked, score, tied_with_best, varying
    from core.format import number

    best = ranked(record)
    ties = tied_with_best(record)
    if as_json:
        print(json.dumps({"status": record["status"], "varying": varying(record), "points": record["points"],
                          "best": best[0] if best else None, "tied": len(ties) if len(ties) > 1 else 0}))
        return
    points = record["points"]
    names = varying(record) or list(points[0]["settings"])
    order = best + [p for p in points if not any(p is b for b in best)]
    pruned = sum(p.get("status") == "pruned" for p in points)
    workers = len(record.get("workers") or [])
    say(f"sweep: {record['status']}" + (f" ({workers} workers)" if workers > 1 else "")
        + f", {sum(p.get('status') == 'finished' for p in points)} of {len(points)} runs finished"
        + (f", {pruned} pruned" if pruned else "")
        + "; ranked by validation macro F1 (test figures are shown, never used to choose)")

    def figure(value) -> str:
        return f"{value:.4f}" if isinstance(value, (int, float)) else "—"

    rows = [["", *names, "status", "val macro-F1", "val acc", "test acc", "run"]]
    for point in order:
        ranked_point = any(point is b for b in best)
        mark = ("=" if len(ties) > 1 else "*") if any(point is t for t in ties) else ""
        run = Path(point["run_dir"]).name if point.get("run_dir") else "—"
        rows.append([mark, *[number(point["settings"].get(n, "")) for n in names], str(point.get("status", "")),
                     figure(score(point) if ranked_point or point.get("status") == "pruned" else None), figure(point.get("val_accuracy")),
                     figure(point.get("test_accuracy")), run + (" (folder gone)" if point.get("missing") else "")])
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    if len(ties) > 1:
        say(f"= {len(ties)} runs tie for best: the sweep cannot tell them apart")
    if pruned:
        say("pruned: stopped after an evaluation that was below the median of the finished runs at the same quarter epoch; "
            "their figures are from then, and they are not ranked")
