"""Commands that train or follow training: train, resume, attach, stop."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from core.cli.output import JsonPrinter, ProgressPrinter, say
from core.cli.parser import config_from_args
from core.config import TrainConfig
from core.errors import ConfigError, CoreError
from core.runs import layout
from core.runs.control import check_not_held, owner_here
from core.runs.layout import RunStatus


def cmd_train(args: argparse.Namespace) -> int:
    from core.training.distributed import machines, needs_launcher
    from core.training.train import train, train_auto_batch

    config = config_from_args(args)
    if args.auto_batch and needs_launcher(config):
        raise ConfigError({"auto_batch": "--auto-batch retries a single process; with several processes "
                                         "lower batch_size yourself"})
    if needs_launcher(config):
        count, machine = machines(config)
        if count > 1 and not args.run_dir:
            raise ConfigError({"run_dir": f"{count} machines train one run: give each the same --run-dir, "
                                          "on a file system they share"})
        if machine > 0:
            return _launch_and_wait(config, args, machine)
    if needs_launcher(config) and not args.detach:
        return _launch_and_follow(config, args)
    if args.detach:
        from core.training.background import start_detached

        run_dir = start_detached(config, args.output_dir, auto_batch=args.auto_batch, run_dir=args.run_dir)
        if args.json:
            print(json.dumps({"event": "Detached", "run_dir": str(run_dir)}))
        else:
            say(f"training in the background; follow it with: sentitune attach {run_dir}\nrun folder: {run_dir}")
        return 0
    run = train_auto_batch if args.auto_batch else train
    return _run_foreground(args, lambda: run(
        config, args.output_dir, on_event=args.printer, stop_event=args.stop, run_dir=args.run_dir,
        owner=owner_here()))


def _launch_and_follow(config: TrainConfig, args: argparse.Namespace) -> int:
    """Several processes in the foreground: launched in their own session and followed from events.jsonl.

    The first Ctrl+C asks every rank to stop at the same step and save; a second one ends them.
    """
    import os

    from core.runs.control import follow, stop
    from core.training.background import start_detached

    run_dir = start_detached(config, args.output_dir, run_dir=args.run_dir)
    asked = False

    def pass_stop_on() -> bool:
        nonlocal asked
        if args.stop.is_set() and not asked:  # the first Ctrl+C (already announced): tell every rank
            asked = True
            try:
                stop(run_dir)
            except CoreError as exc:
                args.printer.note(str(exc))
        return False

    try:
        for event in follow(run_dir, stop=pass_stop_on):
            args.printer(event)
    except KeyboardInterrupt:  # the second Ctrl+C
        try:
            os.killpg(int((run_dir / layout.LAUNCHER_PID).read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        say("sentitune: aborted", file=sys.stderr)
        return 130
    if not args.json:
        say(f"run folder: {run_dir}")
    return _exit_for_run(run_dir)


def _launch_and_wait(config: TrainConfig, args: argparse.Namespace, machine: int) -> int:
    """Another machine than the first: start its processes and wait for them.

    Rank 0, on machine 0, writes the shared run folder (status, events, model); this machine only
    contributes processes, so it neither writes the folder's files nor follows its events.
    """
    import subprocess
    import time

    from core.runs.layout import STOP_FILE
    from core.training.distributed import launch_command

    run_dir = Path(args.run_dir).expanduser()
    cli_args = ["train", "--config", str(_shared_job(config, run_dir)), "--run-dir", str(run_dir)]
    say(f"machine {machine}: starting its processes for the run in {run_dir} (machine 0 writes it and shows its "
        "progress; sentitune attach there follows it)")
    with open(run_dir / f"process.machine{machine}.log", "ab") as log:
        process = subprocess.Popen(launch_command(config, cli_args), stdout=log, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None:
                if args.stop.is_set() and not (run_dir / STOP_FILE).exists():
                    (run_dir / STOP_FILE).touch()  # every rank, on every machine, sees it at a shared step
                time.sleep(0.3)
        except KeyboardInterrupt:  # the second Ctrl+C
            process.kill()
            say("sentitune: aborted", file=sys.stderr)
            return 130
        code = process.returncode
    if code != 0:
        say(f"sentitune: machine {machine}'s processes exited with code {code}; see process.machine{machine}.log "
            "and the run's status.json", file=sys.stderr)
        return 1
    return 0


def _shared_job(config: TrainConfig, run_dir: Path) -> Path:
    """The run's settings in the shared folder, for this machine's processes to read."""
    from core.config import save_toml
    from core.training.distributed import machines

    run_dir.mkdir(parents=True, exist_ok=True)
    _, machine = machines(config)
    return save_toml(config, run_dir / f"job.machine{machine}.toml")


def _exit_for_run(run_dir: Path) -> int:
    """0 for a run that finished or stopped, 1 (with its error) for one that failed."""
    from core.runs.checkpoints import has_complete_checkpoint
    from core.runs.store import run_info

    info = run_info(run_dir)
    if info.status == RunStatus.INTERRUPTED and not _began_training(run_dir):
        say(f"sentitune: {_killed_at_start(run_dir)}", file=sys.stderr)
        return 1
    if info.status == RunStatus.INTERRUPTED:
        way = (f"sentitune resume {run_dir.name} goes on from its last checkpoint" if has_complete_checkpoint(run_dir)
               else "it wrote no checkpoint to resume from: start it again")
        say(f"sentitune: run {run_dir.name} was interrupted: its process ended without a word (killed, or the machine "
            f"went down); {way}", file=sys.stderr)
        return 1
    if info.status in (RunStatus.FAILED, RunStatus.UNREADABLE):
        say(f"sentitune: run {run_dir.name} {info.status}: {info.error or 'see its train.log'}", file=sys.stderr)
        return 1
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from core.runs.store import resolve_run
    from core.training.train import resume

    run_dir = resolve_run(args.run, args.output_dir)
    if args.detach:
        from core.runs.checkpoints import last_complete_checkpoint
        from core.training.background import start_detached
        from core.training.setup import check_resumable

        check_not_held(run_dir)  # what the background process would find: refused here, in one line
        last_complete_checkpoint(run_dir)  # fail here, not in the background, when there is none
        check_resumable(run_dir)
        start_detached(None, args.output_dir, resume_run=run_dir)  # takes the lock (refused if held meanwhile)
        say(f"resuming in the background; follow it with: sentitune attach {run_dir}")
        return 0
    if hasattr(args.printer, "prime"):  # its elapsed time goes on from the earlier segments'
        from core.events import read_events

        args.printer.prime(read_events(run_dir / layout.EVENTS))
    return _run_foreground(args, lambda: resume(run_dir, on_event=args.printer, stop_event=args.stop,
                                                owner=owner_here()))


def _run_foreground(args: argparse.Namespace, job) -> int:
    """Run a training job with progress printing; Ctrl+C / SIGTERM (handled since `main`) are Stop & save."""
    result = job()
    if result.run_dir is None:
        say("stopped before the run folder was made; nothing was saved")
    elif not args.json:
        say(f"run folder: {result.run_dir}")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    from core.errors import RunError
    from core.runs.control import EventFollower, follow, state
    from core.runs.store import Run, resolve_run

    run_dir = Run(resolve_run(args.run, args.output_dir)).path
    printer = JsonPrinter() if args.json else ProgressPrinter()
    while True:
        now = state(run_dir)
        if now.status == RunStatus.INTERRUPTED and not _began_training(run_dir):
            raise RunError(_killed_at_start(run_dir))
        if not (run_dir / layout.EVENTS).exists() and not now.live:
            raise RunError(f"run {run_dir.name} is {now.status} and has no events.jsonl to show; "
                           f"{_what_it_has(run_dir)}")
        try:
            # A resumed run's earlier segments end with their own final event: following goes on while the
            # run is held, and ends once nothing holds it.
            for event in follow(run_dir, follower=EventFollower(run_dir)):
                printer(event)
        except KeyboardInterrupt:
            say(f"detached; the run goes on (sentitune stop {run_dir.name} stops it)", file=sys.stderr)
            return 0
        retry = _retry_of(run_dir)
        if retry is None:
            break
        printer.note(f"run {run_dir.name} ran out of GPU memory and was retried as {retry.name}; following it")
        run_dir = retry
    if not args.json:
        say(f"run {run_dir.name} is {state(run_dir).status}")
    return _exit_for_run(run_dir)


def _began_training(run_dir: Path) -> bool:
    """Whether any segment of the run got as far as training (its events say TrainingStarted)."""
    from core.events import read_events

    return any(type(e).__name__ == "TrainingStarted" for e in read_events(run_dir / layout.EVENTS))


def _killed_at_start(run_dir: Path) -> str:
    """What to do with a run whose process was killed before it trained: nothing of it to follow or evaluate."""
    from core.runs.checkpoints import has_complete_checkpoint

    name = run_dir.name
    what = f"run {name} was interrupted before training began (its process was killed or died while starting)"
    if has_complete_checkpoint(run_dir):
        return f"{what}; sentitune resume {name} goes on from its last checkpoint"
    job = run_dir / layout.JOB
    again = (f"start it again: sentitune train --config {job}" if job.is_file()
             else "start it again with the settings its config.json records")
    return f"{what}, so it has nothing to show and no checkpoint to resume from; {again}"


def _what_it_has(run_dir: Path) -> str:
    """Where to look next for a run with nothing to follow."""
    from core.runs.store import run_info

    if run_info(run_dir).has_model:
        return f"sentitune evaluate {run_dir.name} scores its model, and the report (F4) shows it"
    return f"it saved no model; its process.log says how it ended, and sentitune resume {run_dir.name} tries again"


def _retry_of(run_dir: Path) -> Path | None:
    """The run an out-of-memory failure was retried as (train --auto-batch), if any."""
    from core.errors import RunError
    from core.runs.store import read_run_file

    try:
        retry = read_run_file(run_dir / layout.STATUS).get("retry_run")
    except RunError:
        return None
    return Path(retry) if isinstance(retry, str) and Path(retry).is_dir() else None


def cmd_stop(args: argparse.Namespace) -> int:
    from core.experiments.record import is_sweep_ref, request_sweep_stop, resolve_sweep
    from core.runs.control import stop
    from core.runs.store import resolve_run

    if is_sweep_ref(args.run, args.output_dir):
        say(request_sweep_stop(resolve_sweep(args.run, args.output_dir)))
        return 0
    say(stop(resolve_run(args.run, args.output_dir)))
    return 0
