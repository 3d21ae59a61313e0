"""Hostile outputs and starts that the bad-input table cannot hold: saving onto devices, FIFOs and symbolic links,
the model card of labels holding escape sequences, the installed `sentitune` command, and the app's own start.

Each asserts the exit code, one line without a traceback, and what is left on disk (a device or FIFO untouched,
a link still a link)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.files import NotAFile, write_text_atomic
from tests.core.bad_input_outputs import OUTPUT_CASES
from tests.core.bad_input_support import Env
from tests.tiny import reviews_frame


def _identity(path: Path) -> tuple:
    """What replacing `path` would change: its type and mode, inode, device number, and a link's target."""
    st = os.lstat(path)
    return st.st_mode, st.st_ino, st.st_rdev, os.readlink(path) if stat.S_ISLNK(st.st_mode) else None


def _predict_saving(run: Path, save: Path | str, capsys) -> tuple[int, str, str]:
    code = main(["predict", str(run), "a fine film", "--save", str(save)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "pipe.csv")
    return tmp_path / "pipe.csv"


def _link_to_stdout(tmp_path: Path) -> Path:
    """A link to /dev/stdout, itself a link to /proc/self/fd/1: a chain of two."""
    (tmp_path / "out.csv").symlink_to("/dev/stdout")
    return tmp_path / "out.csv"


SPECIAL = {
    "/dev/full": (lambda tmp: Path("/dev/full"), "/dev/full is not a regular file (a character device)"),
    "/dev/stdout": (lambda tmp: Path("/dev/stdout"), "/dev/stdout is not a regular file (it leads to /proc/self/fd/1"),
    "a link to /dev/stdout": (_link_to_stdout, "out.csv is not a regular file (it leads to /proc/self/fd/1"),
    "a FIFO": (_fifo, "pipe.csv is not a regular file (a FIFO, a named pipe)"),
}


@pytest.fixture()
def _no_special_file_replaced(monkeypatch):
    """Should the refusal ever break, fail the test instead of renaming a file over /dev/full (as root, it would)."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.lexists(dst) and not stat.S_ISREG(os.lstat(dst).st_mode):
            raise AssertionError(f"{dst} would have been replaced")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("name", list(SPECIAL))
def test_predict_save_refuses_what_is_no_regular_file_and_leaves_it_as_it_was(name, trained_run, tmp_path, capsys,
                                                                              _no_special_file_replaced):
    make, says = SPECIAL[name]
    path = make(tmp_path)
    if not os.path.lexists(path):
        pytest.skip(f"{path} does not exist here")
    chain = [path, Path("/dev/stdout")] if "stdout" in name else [path]
    before = [_identity(p) for p in chain]
    code, out, err = _predict_saving(trained_run[0].run_dir, path, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and says in err
    assert "give a file path to save to, or leave out --save to print to the terminal" in err
    assert [_identity(p) for p in chain] == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left beside it


def test_the_atomic_writer_itself_never_replaces_a_fifo(tmp_path, _no_special_file_replaced):
    """The last line of defence, for every file sentitune writes (a path checked, then swapped for a FIFO)."""
    fifo = _fifo(tmp_path)
    before = _identity(fifo)
    with pytest.raises(NotAFile, match="is not a regular file"):
        write_text_atomic(fifo, "text")
    assert _identity(fifo) == before and os.listdir(tmp_path) == ["pipe.csv"]


def test_predict_save_writes_through_a_link_which_stays_a_link(trained_run, tmp_path, capsys):
    target = tmp_path / "kept" / "predictions.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o644)
    (tmp_path / "latest.csv").symlink_to("kept/predictions.csv")  # relative, as `ln -s` makes them
    (tmp_path / "chain.csv").symlink_to(tmp_path / "latest.csv")
    code, out, err = _predict_saving(trained_run[0].run_dir, tmp_path / "chain.csv", capsys)
    assert code == 0 and err == "" and "saved 1 predictions to" in out
    assert os.readlink(tmp_path / "chain.csv") == str(tmp_path / "latest.csv")
    assert os.readlink(tmp_path / "latest.csv") == "kept/predictions.csv"
    assert target.read_text().startswith("text,label,confidence") and "a fine film" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # the file keeps its permissions
    assert sorted(os.listdir(target.parent)) == ["predictions.csv"]


def test_predict_save_through_a_dangling_link_makes_its_target(trained_run, tmp_path, capsys):
    (tmp_path / "link.csv").symlink_to("new.csv")
    code, out, err = _predict_saving(trained_run[0].run_dir, tmp_path / "link.csv", capsys)
    assert code == 0 and err == ""
    assert (tmp_path / "link.csv").is_symlink() and "a fine film" in (tmp_path / "new.csv").read_text()


def test_predict_save_through_a_link_into_a_missing_folder_is_refused(trained_run, tmp_path, capsys):
    (tmp_path / "link.csv").symlink_to("gone/new.csv")
    code, out, err = _predict_saving(trained_run[0].run_dir, tmp_path / "link.csv", capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "link.csv is a link to" in err and "whose folder does not exist" in err
    assert os.readlink(tmp_path / "link.csv") == "gone/new.csv" and not (tmp_path / "gone").exists()


def test_predict_json_never_prints_nan(trained_run, tmp_path, monkeypatch, capsys):
    env = Env(tmp_path, trained_run[0].run_dir / "model", tmp_path / "good.csv", trained_run[0].run_dir, monkeypatch)
    argv = OUTPUT_CASES["predict --json with a model whose outputs are NaN"].setup(env)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out
    line = json.loads(out)  # strict JSON: every reader takes it
    assert line["confidence"] is None and set(line["probabilities"].values()) == {None}


def test_a_tampered_checkpoint_is_never_met_with_torchs_advice(trained_run, tmp_path, monkeypatch, capsys):
    """torch says to load with weights_only=False, which runs the code the file holds: never passed on."""
    good = tmp_path / "good.csv"
    reviews_frame(80).to_csv(good, index=False)
    env = Env(tmp_path, trained_run[0].run_dir / "model", good, trained_run[0].run_dir, monkeypatch)
    assert main(OUTPUT_CASES["resume from a checkpoint whose optimizer.pt was tampered with"].setup(env)) == 2
    out, err = capsys.readouterr()
    assert "weights_only" not in out + err and "damaged or was not written by sentitune" in err


def _relabelled_run(trained_run, tmp_path: Path) -> Path:
    run = shutil.copytree(trained_run[0].run_dir, tmp_path / "run")
    record = json.loads((run / "config.json").read_text())
    record["label_names"] = ["\x1b]0;pwned\x07pos", "neg|ative", "two\nlines"]
    record["config"].update(model="someone/base\x1b[2J", dataset="someone/reviews|x", text_columns=["a|b", "c`d"],
                            label_column="\x1b[31mlabel")
    (run / "config.json").write_text(json.dumps(record))
    return run


def test_the_model_card_shows_user_strings_printable_and_keeps_its_tables(trained_run, tmp_path):
    import yaml

    from core.runs.card import write_model_card

    card = write_model_card(_relabelled_run(trained_run, tmp_path)).read_text(encoding="utf-8")
    assert not any(c in card for c in "\x1b\x07")  # `cat README.md` sets no title, clears no screen
    _, meta, body = card.split("---\n", 2)
    meta = yaml.safe_load(meta)
    assert meta["base_model"] == "someone/base\\x1b[2J" and meta["datasets"] == ["someone/reviews|x"]
    assert 'base_model: "someone/base\\\\x1b[2J"' in card  # the user's values are quoted
    assert "| 0 | \\x1b]0;pwned\\x07pos |" in body and "| 1 | neg\\|ative |" in body and "| 2 | two lines |" in body
    assert "| text_columns | a\\|b, c`d |" in body and "| label_column | \\x1b[31mlabel |" in body
    for row in body.splitlines():
        if row.startswith("|"):  # every table row has its columns, however the names were spelled
            assert row.replace("\\|", "").count("|") == 3, row


def test_unknown_command_through_the_installed_command_lists_the_commands():
    command = shutil.which("sentitune", path=str(Path(sys.executable).parent)) or shutil.which("sentitune")
    assert command, "the sentitune console script is not installed (pip install -e .)"
    done = subprocess.run([command, "fly"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "unknown command 'fly'; the commands are: train, predict, evaluate" in done.stderr


def test_a_malformed_hf_endpoint_is_one_line_in_a_fresh_process(tiny_model, tmp_path):
    """In a new process nothing has imported huggingface_hub yet, whose import fails on it."""
    command = shutil.which("sentitune", path=str(Path(sys.executable).parent)) or shutil.which("sentitune")
    done = subprocess.run([command, "train", "--model", str(tiny_model), "--dataset", str(tmp_path / "x.csv"),
                           "--output-dir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_ENDPOINT": "http://[::1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("sentitune: HF_ENDPOINT is 'http://[::1', which is not a web address; set it to "
                                   "the Hub's (https://huggingface.co) or a mirror's https:// address, or unset it")
    assert not (tmp_path / "runs").exists()


def _app_never_starts(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the app was started")

    monkeypatch.setattr("tui.app.create_app", refuse)


def test_the_app_with_a_folder_for_config_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    from tui.launch import main as launch

    _app_never_starts(monkeypatch)
    assert launch(["--config", str(tmp_path), "--output-dir", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"{tmp_path} is a folder; give a .toml file" in err


def test_the_app_refuses_a_malformed_hf_endpoint_before_it_starts(tmp_path, monkeypatch, capsys):
    from tui.launch import main as launch

    _app_never_starts(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", "not a url")
    assert launch(["--output-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "HF_ENDPOINT is 'not a url'" in err


def test_files_written_atomically_follow_the_umask_like_their_siblings(tmp_path, trained_run):
    """On a shared box a teaching assistant reads a run: no file of it is owner-only when the umask allows more."""
    import os
    import stat

    from core.files import write_json_atomic

    old = os.umask(0o027)
    try:
        write_json_atomic(tmp_path / "status.json", {"status": "finished"})
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "status.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o640
    run = trained_run[0].run_dir
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (run / "status.json", run / "config.json",
                                                                run / "metrics.json", run / "events.jsonl")}
    assert len(set(modes.values())) == 1 and modes["status.json"] == 0o666 & ~old, modes
