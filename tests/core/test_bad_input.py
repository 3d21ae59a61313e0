"""The bad-input table: every kind of input a user can get wrong, its one-line message, and a clean state.

Each case runs the real CLI entry point; exit code 2, one line on stderr that says what to do, and no
run folder created (or, for run folders, nothing in them changed).
"""

import json
import shutil

import pytest

from core.cli import main
from tests.tiny import reviews_frame


def _csv(path, frame):
    frame.to_csv(path, index=False)
    return path


def _setup(case, tmp, tiny_model, finished_run):
    """Build what the case needs in `tmp`; returns the CLI arguments."""
    model = str(tiny_model)
    good = _csv(tmp / "good.csv", reviews_frame(80))
    train = ["train", "--model", model, "--output-dir", str(tmp / "runs")]
    if case == "non-number epochs":
        return train + ["--dataset", str(good), "--epochs", "many"]
    if case == "negative learning rate":
        return train + ["--dataset", str(good), "--learning-rate", "-0.1"]
    if case == "zero batch size":
        return train + ["--dataset", str(good), "--batch-size", "0"]
    if case == "unknown flag":
        return train + ["--epoch", "3"]
    if case == "config typo":
        (tmp / "c.toml").write_text("lerning_rate = 1e-4\n")
        return train + ["--config", str(tmp / "c.toml")]
    if case == "config not TOML":
        (tmp / "c.toml").write_text("epochs: 3\n")
        return train + ["--config", str(tmp / "c.toml")]
    if case == "missing dataset":
        return train + ["--dataset", str(tmp / "nope.csv")]
    if case == "unsupported file type":
        (tmp / "data.xlsx").write_bytes(b"PK\x03\x04")
        return train + ["--dataset", str(tmp / "data.xlsx")]
    if case == "empty file":
        (tmp / "empty.csv").write_text("")
        return train + ["--dataset", str(tmp / "empty.csv")]
    if case == "header only":
        (tmp / "header.csv").write_text("text,label\n")
        return train + ["--dataset", str(tmp / "header.csv")]
    if case == "latin-1 file":
        (tmp / "latin.csv").write_bytes("text,label\nun caf\xe9 tr\xe8s bon,positive\n".encode("latin-1"))
        return train + ["--dataset", str(tmp / "latin.csv")]
    if case == "binary file":
        (tmp / "binary.csv").write_bytes(bytes(range(256)) * 40)
        return train + ["--dataset", str(tmp / "binary.csv")]
    if case == "one class only":
        return train + ["--dataset", str(_csv(tmp / "one.csv", reviews_frame(40, labels=("pos", "pos"))))]
    if case == "wrong text column":
        return train + ["--dataset", str(good), "--text-columns", "review"]
    if case == "wrong label column":
        return train + ["--dataset", str(good), "--label-column", "stars"]
    if case == "too few rows":
        return train + ["--dataset", str(_csv(tmp / "few.csv", reviews_frame(6)))]
    if case == "model folder missing":
        return ["train", "--model", str(tmp / "no-model"), "--dataset", str(good), "--output-dir", str(tmp / "runs")]
    if case == "model folder without tokenizer":
        bare = tmp / "bare-model"
        shutil.copytree(tiny_model, bare)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            (bare / name).unlink(missing_ok=True)
        return ["train", "--model", str(bare), "--dataset", str(good), "--output-dir", str(tmp / "runs")]
    if case == "predict empty review":
        return ["predict", str(finished_run), " "]
    if case == "predict missing file":
        return ["predict", str(finished_run), "--file", str(tmp / "reviews.txt")]
    if case == "run folder missing":
        return ["evaluate", str(tmp / "runs" / "nope"), "--output-dir", str(tmp / "runs")]
    if case == "run with corrupt config":
        broken = tmp / "broken-run"
        shutil.copytree(finished_run, broken)
        (broken / "config.json").write_text("{not json")
        return ["evaluate", str(broken)]
    if case == "run without a model":
        bare_run = tmp / "bare-run"
        shutil.copytree(finished_run, bare_run, ignore=shutil.ignore_patterns("model"))
        return ["predict", str(bare_run), "hello"]
    if case == "resume without checkpoint":
        return ["resume", str(finished_run)]
    if case == "stop a finished run":
        return ["stop", str(finished_run)]
    raise AssertionError(case)


CASES = {
    "non-number epochs": "invalid settings: epochs: must be a whole number, not 'many'",
    "negative learning rate": "invalid settings: learning_rate: must be at least 1e-08",
    "zero batch size": "invalid settings: batch_size: must be at least 1",
    "unknown flag": "unrecognized arguments: --epoch",
    "config typo": "lerning_rate: unknown setting; did you mean 'learning_rate'?",
    "config not TOML": "is not valid TOML",
    "missing dataset": "dataset file not found:",
    "unsupported file type": "unsupported file type; use one of .csv, .tsv, .json, .jsonl, .parquet",
    "empty file": "is empty; it needs a header row and labelled rows",
    "header only": "has no rows",
    "latin-1 file": "is not UTF-8 text; re-save it with UTF-8 encoding",
    "binary file": "is not UTF-8 text",
    "one class only": "only one label (pos)",
    "wrong text column": "text column 'review' not found; columns are: text, label",
    "wrong label column": "label column 'stars' not found; columns are: text, label",
    "too few rows": "too few rows",
    "model folder missing": "model folder not found:",
    "model folder without tokenizer": "no tokenizer in",
    "predict empty review": "the review is empty; type some text to predict",
    "predict missing file": "file not found:",
    "run folder missing": "no run folder",
    "run with corrupt config": "config.json is not valid JSON; the run folder is damaged",
    "run without a model": "has no saved model",
    "resume without checkpoint": "has no complete checkpoint to resume from",
    "stop a finished run": "is not running (it is finished)",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_table(case, tmp_path, tiny_model, trained_run, capsys):
    finished_run = trained_run[0].run_dir
    before = {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()}
    argv = _setup(case, tmp_path, tiny_model, finished_run)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert CASES[case] in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    runs = tmp_path / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()} == before


def test_huge_review_is_truncated_not_rejected(tmp_path, tiny_config):
    frame = reviews_frame(80)
    frame.loc[0, "text"] = "great " * 200_000  # about 1.2 MB in one review
    path = _csv(tmp_path / "huge.csv", frame)
    from core.data import prepare

    data = prepare(tiny_config.replace(dataset=str(path)))
    assert max(len(t) for s in data.splits.values() for t in s["text"]) > 1_000_000


def test_events_with_a_corrupt_line_still_load(trained_run, tmp_path):
    from core.events import read_events

    lines = (trained_run[0].run_dir / "events.jsonl").read_text().splitlines()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines[:3] + ["{garbage", "\x00\x01"] + lines[3:]) + "\n")
    assert len(read_events(path)) == len(lines)
    assert json.loads(lines[0])["event"] == "StageChanged"
