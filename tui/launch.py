"""The `sentitune` command: a subcommand runs headless (core.cli); no subcommand opens the app."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import main as cli_main
from core.cli.parser import COMMANDS
from core.format import printable

APP_OPTIONS = ("--config", "--run", "--output-dir")  # the app's own options, each with a value


def _subcommand(argv: list[str]) -> str | None:
    """The first word that is not an option or an option's value (`sentitune --output-dir runs` is the app
    on the folder `runs`, not the `runs` command)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in APP_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


APP_HELP = """With no command, sentitune opens the app, a terminal UI that works over SSH: F1 dataset, F2
hyperparameters, F3 training, F4 report, F5 predict; ? lists the keys of the screen you are on. With a
command it runs headless (sentitune COMMAND --help for its options); the commands follow."""


def _app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentitune", usage="sentitune [--config FILE.toml] [--run RUN] [--output-dir DIR]\n"
                                "       sentitune COMMAND [options]",
        description=APP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE.toml", help="open the app with this config")
    parser.add_argument("--run", metavar="RUN", help="open a run on its report")
    parser.add_argument("--output-dir", metavar="DIR", default="runs", help="runs folder (default: runs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    word = _subcommand(argv)
    if word is None and argv[:1] in (["-h"], ["--help"]):  # the app's help first, then the commands'
        _app_parser().print_help()
        print()
        return cli_main(argv)
    if word in COMMANDS or any(a in ("-h", "--help") for a in argv[:1]):
        return cli_main(argv)
    if word is not None:  # the app takes no word: a mistyped command, said as one
        print(printable(f"sentitune: unknown command '{word}'; the commands are: {', '.join(COMMANDS)} "
                        "(sentitune alone opens the app; see sentitune --help)"), file=sys.stderr)
        return 2
    args = _app_parser().parse_args(argv)
    from tui.app import run_app

    return run_app(config_path=args.config, run=args.run, runs_root=args.output_dir)


def entry() -> None:
    """The installed `sentitune` command: a subcommand's process ends at once when it is done (core.cli.finish)."""
    from core.cli.main import finish

    finish(main())


if __name__ == "__main__":
    entry()
