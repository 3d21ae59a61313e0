"""The entry point: parse, dispatch, and turn every CoreError into one line and an exit code."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import NoReturn

from core.cli.experiments import cmd_lr_find, cmd_sweep
from core.cli.output import JsonPrinter, ProgressPrinter, error_line, install_stop_handlers, say
from core.cli.parser import build_parser
from core.cli.publish import cmd_export, cmd_push
from core.cli.queries import cmd_data, cmd_doctor, cmd_evaluate, cmd_predict, cmd_runs
from core.cli.training import cmd_attach, cmd_resume, cmd_stop, cmd_train
from core.errors import CoreError
from core.network import check_hub_endpoint


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
    if args.command in ("train", "resume", "lr-find", "sweep"):
        args.stop = threading.Event()
        args.printer = JsonPrinter() if args.json else ProgressPrinter()
        previous = install_stop_handlers(args.stop, args.printer)
    try:
        if args.command not in HUB_FREE:
            check_hub_endpoint()  # before anything imports huggingface_hub, which parses it on import
        return COMMAND_FUNCS[args.command](args)
    except CoreError as exc:
        if args.debug:
            traceback.print_exc()
        say(f"sentitune: {error_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        say("sentitune: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sentitune runs | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
        return 141
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def finish(code: int) -> NoReturn:
    """End a command's process once its work is done: its other threads are waited for, atexit handlers run and
    output is flushed, but the interpreter's own teardown is skipped (about 2 s of freeing modules once torch and
    transformers are loaded, after the last line was printed)."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a reader that went away (`| head`), or a closed stream: nothing more to say
    os._exit(code)


HUB_FREE = ("runs", "attach", "stop")
"""Commands that never load the Hugging Face libraries: a broken HF_ENDPOINT does not concern them."""

COMMAND_FUNCS = {
    "train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "data": cmd_data, "runs": cmd_runs,
    "attach": cmd_attach, "stop": cmd_stop, "resume": cmd_resume, "export": cmd_export, "push": cmd_push,
    "lr-find": cmd_lr_find, "sweep": cmd_sweep, "doctor": cmd_doctor,
}
