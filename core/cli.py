"""The headless command line: train, predict, evaluate, data, runs (no Textual import)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

from core.config import TrainConfig, load_toml
from core.errors import ConfigError, CoreError
from core.format import format_confusion, format_event, format_metrics, one_line, printable, stop_note

COMMANDS = ("train", "predict", "evaluate", "data", "runs", "attach", "stop", "resume")

# CLI flag -> config field, for the flags that override config values.
CONFIG_FLAGS = {
    "model": "model", "dataset": "dataset", "text_columns": "text_columns", "label_column": "label_column",
    "max_samples": "max_samples", "epochs": "epochs", "batch_size": "batch_size",
    "learning_rate": "learning_rate", "max_length": "max_length", "seed": "seed",
    "num_processes": "num_processes", "accelerate_config": "accelerate_config",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as one line and exit code 2, and takes no abbreviated flags."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--epoch` must not quietly mean `--epochs`
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, printable(f"sentitune: error: {message} (see {self.prog} --help)") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sentitune", description="Fine-tune and query a sentiment classifier.",
        epilog="With no subcommand, sentitune opens the app: sentitune [--config FILE.toml] [--run RUN] "
               "[--output-dir DIR]",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    parser.subcommands = sub.choices

    def data_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (flags override it)")
        p.add_argument("--model", metavar="ID|DIR", help="hub model id or local model folder")
        p.add_argument("--dataset", metavar="ID|FILE", help="hub dataset name or local .csv/.tsv/.json/.jsonl/.parquet")
        p.add_argument("--text-columns", metavar="a,b", help="text columns joined in order")
        p.add_argument("--label-column", metavar="C", help="label column")
        p.add_argument("--max-samples", metavar="N", help="stratified subset size (0 or 'all' for every row)")
        p.add_argument("--max-length", metavar="L", help="max tokens per review")
        p.add_argument("--seed", metavar="S")
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    train = sub.add_parser("train", help="fine-tune a model and save the run")
    data_flags(train)
    train.add_argument("--epochs", metavar="E")
    train.add_argument("--batch-size", metavar="B")
    train.add_argument("--learning-rate", metavar="LR")
    train.add_argument("--output-dir", metavar="DIR", default="runs", help="runs folder (default: runs)")
    train.add_argument("--json", action="store_true", help="print each event as one JSON line")
    train.add_argument("--detach", action="store_true",
                       help="train in a background process that survives logout; print the run folder and return")
    train.add_argument("--auto-batch", action="store_true",
                       help="on CUDA out of memory, retry with half the batch and twice the accumulation")
    train.add_argument("--num-processes", metavar="N", help="train with N processes (one per GPU) via accelerate")
    train.add_argument("--accelerate-config", metavar="FILE", help="accelerate config YAML (multi-node)")
    train.add_argument("--run-dir", metavar="DIR",
                       help="write the run into DIR instead of a new folder under --output-dir (with two "
                            "machines: the same folder, on a file system both share)")

    def command(name: str, help: str, target: str | None = "run", json_flag: bool = True) -> argparse.ArgumentParser:
        """A subcommand with the flags most share: RUN, --output-dir, --json, --debug."""
        p = sub.add_parser(name, help=help)
        if target:
            p.add_argument(target, metavar="RUN" if target == "run" else "RUN_OR_MODEL_DIR")
        p.add_argument("--output-dir", metavar="DIR", default="runs", help="runs folder (default: runs)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="JSON lines instead of text")
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        return p

    command("attach", "follow a run's progress (Ctrl+C detaches; the run goes on)")
    command("stop", "ask a running run to stop at its next step and save", json_flag=False)
    resume = command("resume", "continue a stopped, failed or interrupted run from its last checkpoint")
    resume.add_argument("--detach", action="store_true", help="resume in a background process")

    predict = command("predict", "predict sentiment with a run's model or a model folder", target="target")
    predict.add_argument("texts", nargs="*", metavar="TEXT")
    predict.add_argument("--file", metavar="FILE", help="a .txt (one review per line) or .csv with a text column")
    predict.add_argument("--save", metavar="OUT.csv", help="also write the predictions to a CSV file")

    evaluate = command("evaluate", "score a run's model on its test split or another dataset")
    evaluate.add_argument("--dataset", metavar="ID|FILE", help="evaluate on every row of this dataset instead")

    data = sub.add_parser("data", help="load a dataset and print preview statistics")
    data_flags(data)
    data.add_argument("--json", action="store_true")

    command("runs", "list runs with status and headline metrics", target=None)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config file (or defaults) with command-line flags applied on top."""
    base = load_toml(args.config) if getattr(args, "config", None) else TrainConfig()
    overrides = {field: getattr(args, flag) for flag, field in CONFIG_FLAGS.items() if getattr(args, flag, None) is not None}
    return TrainConfig.from_dict(overrides, base=base) if overrides else base


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the subcommand's parser, so the hint names its --help
        parser.subcommands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        build_parser().print_help()
        return 2
    # Ctrl+C and SIGTERM become a stop request from the first moment of a training command, before the
    # heavy imports: a detached run stopped while it starts must still end `stopped`.
    args.stop, args.printer, previous = None, None, {}
    if args.command in ("train", "resume"):
        args.stop = threading.Event()
        args.printer = _JsonPrinter() if args.json else _ProgressPrinter()
        previous = _install_stop_handlers(args.stop, args.printer)
    try:
        return COMMAND_FUNCS[args.command](args)
    except CoreError as exc:
        if args.debug:
            traceback.print_exc()
        say(f"sentitune: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        say("sentitune: interrupted", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def say(text: str = "", file=None) -> None:
    """Print a line that may hold user text (file names, labels, reviews) with control characters made visible."""
    print(printable(text), file=file or sys.stdout, flush=True)


def _one_line(exc: CoreError) -> str:
    if isinstance(exc, ConfigError):
        return "invalid settings: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    return str(exc)


# ---------------------------------------------------------------- train

def cmd_train(args: argparse.Namespace) -> int:
    from core.distributed import machines, needs_launcher
    from core.train import train, train_auto_batch

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
        from core.background import start_detached

        run_dir = start_detached(config, args.output_dir, auto_batch=args.auto_batch, run_dir=args.run_dir)
        if args.json:
            print(json.dumps({"event": "Detached", "run_dir": str(run_dir)}))
        else:
            say(f"training in the background; follow it with: sentitune attach {run_dir}\nrun folder: {run_dir}")
        return 0
    run = train_auto_batch if args.auto_batch else train
    return _run_foreground(args, lambda: run(
        config, args.output_dir, on_event=args.printer, stop_event=args.stop, run_dir=args.run_dir))


def _launch_and_follow(config: TrainConfig, args: argparse.Namespace) -> int:
    """Several processes in the foreground: launched in their own session and followed from events.jsonl.

    The first Ctrl+C asks every rank to stop at the same step and save; a second one ends them.
    """
    import os

    from core.background import follow_events, request_stop, start_detached

    run_dir = start_detached(config, args.output_dir, run_dir=args.run_dir)
    asked = False

    def pass_stop_on() -> bool:
        nonlocal asked
        if args.stop.is_set() and not asked:  # the first Ctrl+C (already announced): tell every rank
            asked = True
            try:
                request_stop(run_dir)
            except CoreError as exc:
                args.printer.note(str(exc))
        return False

    try:
        for event in follow_events(run_dir, stop=pass_stop_on):
            args.printer(event)
    except KeyboardInterrupt:  # the second Ctrl+C
        try:
            os.killpg(int((run_dir / "launcher.pid").read_text()), signal.SIGKILL)
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

    from core.distributed import launch_command
    from core.stopping import STOP_FILE

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
    from core.distributed import machines

    run_dir.mkdir(parents=True, exist_ok=True)
    _, machine = machines(config)
    return save_toml(config, run_dir / f"job.machine{machine}.toml")


def _exit_for_run(run_dir: Path) -> int:
    """0 for a run that finished or stopped, 1 (with its error) for one that failed."""
    from core.runs import run_info

    info = run_info(run_dir)
    if info.status in ("failed", "interrupted", "unreadable"):
        say(f"sentitune: run {run_dir.name} {info.status}: {info.error or 'see its train.log'}", file=sys.stderr)
        return 1
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from core.runs import resolve_run
    from core.train import resume

    run_dir = resolve_run(args.run, args.output_dir)
    if args.detach:
        from core.background import start_detached
        from core.checkpoints import last_complete_checkpoint
        from core.train import check_resumable

        last_complete_checkpoint(run_dir)  # fail here, not in the background, when there is none
        check_resumable(run_dir)
        start_detached(None, args.output_dir, resume_run=run_dir)
        say(f"resuming in the background; follow it with: sentitune attach {run_dir}")
        return 0
    return _run_foreground(args, lambda: resume(run_dir, on_event=args.printer, stop_event=args.stop))


def _run_foreground(args: argparse.Namespace, job) -> int:
    """Run a training job with progress printing; Ctrl+C / SIGTERM (handled since `main`) are Stop & save."""
    result = job()
    if result.run_dir is None:
        say("stopped before the run folder was made; nothing was saved")
    elif not args.json:
        say(f"run folder: {result.run_dir}")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    from core.background import EventFollower, follow_events
    from core.errors import RunError
    from core.runs import STARTING, Run, effective_status, read_run_file, resolve_run

    run_dir = Run(resolve_run(args.run, args.output_dir)).path
    printer = _JsonPrinter() if args.json else _ProgressPrinter()
    while True:
        state = effective_status(run_dir, read_run_file(run_dir / "status.json"))
        if not (run_dir / "events.jsonl").exists() and state not in ("running", STARTING):
            raise RunError(f"run {run_dir.name} is {state} and has no events.jsonl to show; "
                           f"sentitune evaluate {run_dir.name} or the report shows its results")
        try:
            for event in follow_events(run_dir, follower=EventFollower(run_dir)):
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
        say(f"run {run_dir.name} is {effective_status(run_dir, read_run_file(run_dir / 'status.json'))}")
    return _exit_for_run(run_dir)


def _retry_of(run_dir: Path) -> Path | None:
    """The run an out-of-memory failure was retried as (train --auto-batch), if any."""
    from core.errors import RunError
    from core.runs import read_run_file

    try:
        retry = read_run_file(run_dir / "status.json").get("retry_run")
    except RunError:
        return None
    return Path(retry) if isinstance(retry, str) and Path(retry).is_dir() else None


def cmd_stop(args: argparse.Namespace) -> int:
    from core.background import request_stop
    from core.runs import resolve_run

    say(request_stop(resolve_run(args.run, args.output_dir)))
    return 0


def _install_stop_handlers(stop: threading.Event, printer) -> dict:
    """First Ctrl+C (or SIGTERM) asks for a stop; a second Ctrl+C aborts."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    asked = []

    def handle(signum, frame):
        # The run clears its stop Event once training has stopped, so remember the first Ctrl+C here.
        if asked and signum == signal.SIGINT:
            raise KeyboardInterrupt
        asked.append(signum)
        stop.set()
        printer.note(f"stopping: {stop_note(printer.stage)} (Ctrl+C again aborts)")

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handle)
    return previous


class _Printer:
    """Prints events; remembers the run's stage so a stop can say what it will do."""

    stage: str | None = None

    def __call__(self, event) -> None:
        if type(event).__name__ == "StageChanged":
            self.stage = event.stage
        self.show(event)

    def show(self, event) -> None:
        raise NotImplementedError

    def note(self, message: str) -> None:
        raise NotImplementedError


class _JsonPrinter(_Printer):
    """Prints each event as one JSON line."""

    def show(self, event) -> None:
        print(json.dumps(event.to_dict(), default=str), flush=True)

    def note(self, message: str) -> None:
        print(json.dumps({"event": "Note", "message": message}), file=sys.stderr, flush=True)


class _ProgressPrinter(_Printer):
    """One readable line per event."""

    def show(self, event) -> None:
        line = format_event(event)
        if line:
            say(line)

    def note(self, message: str) -> None:
        say(message, file=sys.stderr)


# ---------------------------------------------------------------- predict / evaluate

def cmd_predict(args: argparse.Namespace) -> int:
    from core.errors import PredictError
    from core.predict import Predictor, check_save_path, read_reviews, write_predictions_csv
    from core.runs import resolve_run

    save = check_save_path(args.save, args.file) if args.save else None  # before any work is done
    texts = list(args.texts)
    if args.file:
        texts += read_reviews(args.file)[0]
    if not texts and not sys.stdin.isatty():
        texts = [line for line in _read_stdin().splitlines() if line.strip()]
    if not texts:
        raise PredictError("give reviews to predict: sentitune predict RUN \"great film\" (or --file reviews.txt)")
    target = Path(args.target)
    if not target.exists():
        target = resolve_run(args.target, args.output_dir)
    predictor = Predictor(target)
    predictions = predictor.predict(texts)
    for p in predictions:
        if args.json:
            print(json.dumps(p.to_dict()))
        else:
            say(f"{p.label:<10} {p.confidence:6.1%}  {one_line(p.text, 70)}")
    if save:
        write_predictions_csv(predictions, save)
        if not args.json:
            say(f"saved {len(predictions)} predictions to {save}")
    return 0


def _read_stdin() -> str:
    """Standard input as text, whatever its encoding (bytes that fit none become replacement characters)."""
    from core.textfile import decode_lenient

    buffer = getattr(sys.stdin, "buffer", None)
    return decode_lenient(buffer.read()) if buffer is not None else sys.stdin.read()


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.evaluate import evaluate_run
    from core.runs import load_run

    report = evaluate_run(load_run(args.run, args.output_dir), args.dataset, on_progress=_Progress("scored"))
    if args.json:
        print(json.dumps(report))
        return 0
    say(f"{report['dataset']}: {report['n']} reviews")
    say(format_metrics(report))
    say(format_confusion(report["confusion_matrix"], report["label_names"]))
    return 0


class _Progress:
    """`done/total` on standard error about once a second, for lists long enough to wait for."""

    def __init__(self, verb: str, min_total: int = 2000, interval: float = 1.0):
        self.verb, self.min_total, self.interval, self.last = verb, min_total, interval, 0.0

    def __call__(self, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if total < self.min_total or (now - self.last < self.interval and done < total):
            return
        self.last = now
        end = "\n" if done >= total or not sys.stderr.isatty() else "\r"
        print(f"{self.verb} {done:,}/{total:,} reviews", end=end, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data / runs

def cmd_data(args: argparse.Namespace) -> int:
    from core.data import prepare
    from core.errors import ModelError
    from core.model import load_tokenizer
    from core.stats import data_stats

    config = config_from_args(args)
    data = prepare(config)
    tokenizer, note = None, None
    try:
        tokenizer = load_tokenizer(config.model)
    except ModelError as exc:
        note = f"token lengths need the model's tokenizer: {exc}"
    stats = data_stats(data, tokenizer, config.max_length)
    if args.json:
        from dataclasses import asdict

        print(json.dumps({"source": data.source, "notes": data.notes, "cleaning": asdict(data.cleaning),
                          "label_names": data.label_names, **asdict(stats)}))
        return 0
    say(f"source: {data.source}")
    for line in data.notes:
        say(line)
    say("cleaning: " + "; ".join(data.cleaning.lines()))
    say("split       rows  " + "  ".join(f"{n:>10}" for n in data.label_names))
    for split, count in stats.rows.items():
        say(f"{split:<10} {count:>5}  " + "  ".join(f"{stats.balance[split][n]:>10}" for n in data.label_names))
    c = stats.chars
    say(f"characters: mean {c.mean:.0f}, median {c.p50:.0f}, p95 {c.p95:.0f}, max {c.max}")
    if stats.tokens:
        t = stats.tokens
        say(f"tokens: mean {t.mean:.0f}, median {t.p50:.0f}, p95 {t.p95:.0f}, max {t.max}; "
              f"{stats.truncated_share:.1%} truncated at max_length {config.max_length}")
    if note:
        say(note)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from core.runs import list_runs

    runs = list_runs(args.output_dir)
    if args.json:
        for r in runs:
            print(json.dumps({**r.__dict__, "path": str(r.path), "name": r.name}))
        return 0
    if not runs:
        say(f"no runs in {args.output_dir}")
        return 0

    def pct(v):
        return f"{v:.3f}" if v is not None else "-"

    say(f"{'run':<52} {'status':<10} {'val acc':>7} {'val f1':>7} {'test acc':>8} {'test f1':>7}")
    for r in runs:
        say(f"{r.name:<52} {r.status:<10} {pct(r.val_accuracy):>7} {pct(r.val_f1):>7} "
              f"{pct(r.test_accuracy):>8} {pct(r.test_f1):>7}")
    return 0


COMMAND_FUNCS = {
    "train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "data": cmd_data, "runs": cmd_runs,
    "attach": cmd_attach, "stop": cmd_stop, "resume": cmd_resume,
}


if __name__ == "__main__":
    raise SystemExit(main())
