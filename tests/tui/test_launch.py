"""`sentitune --help`: the app first (what no command does), then the headless commands."""

from __future__ import annotations

import pytest

from core.cli.parser import COMMANDS


def test_help_says_no_command_opens_the_app_and_lists_the_commands(capsys):
    from tui.launch import main

    try:
        code = main(["--help"])
    except SystemExit as exit:  # argparse's own way out of --help
        code = exit.code
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("usage: sentitune [--config FILE.toml] [--run RUN] [--output-dir DIR]")
    assert "With no command, sentitune opens the app" in " ".join(out.split())
    assert "--output-dir DIR" in out
    listed = out.split("the commands follow.", 1)[1]
    assert all(command in listed for command in COMMANDS)


@pytest.mark.parametrize("argv", [["train", "--help"]])
def test_a_commands_help_is_the_commands_own(argv, capsys):
    from tui.launch import main

    with pytest.raises(SystemExit):
        main(argv)
    assert "With no command" not in capsys.readouterr().out
