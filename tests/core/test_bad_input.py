"""The bad-input table: every kind of input a user can get wrong, what the CLI answers, and what is left on disk.

Each case runs the real CLI entry point and asserts its exit code, that the answer is one line naming
the problem (no traceback), that no run folder was created, and that the shared finished run was not
touched; some cases check more of what is on disk afterwards.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from core.cli import main
from tests.core.bad_input_data import DATA_CASES
from tests.core.bad_input_experiments import EXPERIMENT_CASES
from tests.core.bad_input_outputs import OUTPUT_CASES
from tests.core.bad_input_run_life import RUN_LIFE_CASES
from tests.core.bad_input_support import Case, Env
from tests.tiny import reviews_frame


def _resumable_copy(env: Env, change: Callable[[Path], None]) -> Path:
    """A copy of the finished run with its own copy of the data and a checkpoint, the data then changed."""
    run = env.run_copy("resumable")
    data = env.tmp / "run-data.csv"
    record = json.loads((run / "config.json").read_text())
    shutil.copy(record["config"]["dataset"], data)
    record["config"]["dataset"] = str(data)
    (run / "config.json").write_text(json.dumps(record))
    checkpoint = run / "checkpoints" / "checkpoint-10"
    shutil.copytree(run / "model", checkpoint)
    for name in ("optimizer.pt", "scheduler.pt"):
        (checkpoint / name).write_bytes(b"")
    (checkpoint / "trainer_state.json").write_text("{}")
    change(data)
    return run


def _add_rows(path: Path, label: str = "positive") -> None:
    frame = pd.read_csv(path)
    extra = reviews_frame(20, seed=9).assign(label=label)
    pd.concat([frame, extra]).to_csv(path, index=False)


def _status_unchanged(name: str, status: str = "finished") -> Callable[[Env], None]:
    def check(env: Env) -> None:
        assert json.loads((env.tmp / name / "status.json").read_text())["status"] == status
    return check


def _file_is(path: str, content: str) -> Callable[[Env], None]:
    def check(env: Env) -> None:
        assert (env.tmp / path).read_text() == content
    return check


def _no_file(path: str) -> Callable[[Env], None]:
    def check(env: Env) -> None:
        assert not (env.tmp / path).exists()
    return check


def _offline(env: Env) -> None:
    """HF_HUB_OFFLINE=1, also for the libraries already imported (they read it when imported)."""
    import datasets
    import huggingface_hub.constants

    env.monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env.monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    env.monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def _folder(env: Env, name: str) -> Path:
    (env.tmp / name).mkdir()
    return env.tmp / name


def _damaged_onnx(env: Env) -> Path:
    """A folder that looks like an ONNX export (tokenizer, config, model.onnx) whose model.onnx is not ONNX."""
    folder = env.model_copy(drop=("model.safetensors",))
    (folder / "model.onnx").write_bytes(b"\x00not a protobuf" * 10)
    return folder


def _export_with_notes(env: Env) -> Path:
    """An ONNX export folder (as its export.json lists it) with a file of the student's added."""
    folder = env.tmp / "exp"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "export.json").write_text(json.dumps({"files": ["model.onnx", "export.json"]}))
    (folder / "notes.txt").write_text("mine")
    return folder


def _push(env: Env, repo: str, **variables: str) -> list[str]:
    env.monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    for name, value in variables.items():
        env.monkeypatch.setenv(name, value)
    return ["push", str(env.finished), "--repo", repo]


def _train_with_model(env: Env, model) -> list[str]:
    return ["train", "--model", str(model), "--dataset", str(env.good), "--output-dir", str(env.runs)]


def _damaged_model(env: Env, name: str, content: bytes) -> Path:
    copy = env.model_copy()
    (copy / name).write_bytes(content)
    return copy


def _damaged_run(env: Env, name: str, content: str) -> Path:
    copy = env.run_copy()
    (copy / name).write_text(content)
    return copy


def _non_utf8_parquet(env: Env) -> Path:
    frame = reviews_frame(40)
    frame.assign(text=[b"\xff\xfe" + t.encode() for t in frame["text"]]).to_parquet(env.tmp / "bytes.parquet")
    return env.tmp / "bytes.parquet"


def _disk_with_free(env: Env, free: int) -> None:
    env.monkeypatch.setattr("core.training.preflight.shutil.disk_usage", lambda path: SimpleNamespace(free=free))


def _disk_full_at_folder(env: Env) -> list[str]:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    env.monkeypatch.setattr("core.training.train.write_json_atomic", full)
    return env.train("--max-length", 64, "--epochs", 1)


def _nested(column: str, value) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        rows = reviews_frame(40).to_dict("records")
        rows[3][column] = value
        return env.train(dataset=env.write("nested.jsonl", "\n".join(json.dumps(r) for r in rows)))
    return setup


def _with_status(content: str, command: str) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        run = env.run_copy()
        (run / "status.json").write_text(content)
        return [command, str(run)]
    return setup


def _training_without_model(env: Env) -> Path:
    """A copy of the finished run as it looks while its process starts training: no model folder yet."""
    from tests.core.bad_input_run_life import _held

    return _held(env, status="starting", drop=("model",))


def _onnx_without_tokenizer(env: Env) -> Path:
    """An ONNX-looking folder whose tokenizer_config.json is left without the tokenizer files it needs."""
    folder = _damaged_onnx(env)
    for name in ("tokenizer.json", "vocab.txt"):
        (folder / name).unlink(missing_ok=True)
    return folder


def _runs_listing(bad: dict[str, str], *flags: str) -> Callable[[Env], list[str]]:
    """A runs folder holding the finished run and one copy whose files hold `bad` contents."""
    def setup(env: Env) -> list[str]:
        root = env.tmp / "listed"
        root.mkdir()
        shutil.copytree(env.finished, root / "good-run")
        broken = shutil.copytree(env.finished, root / "broken-run")
        for name, content in bad.items():
            (broken / name).write_text(content)
        return ["runs", "--output-dir", str(root), *flags]
    return setup


def _bad_label_frame(labels) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        frame = reviews_frame(len(labels))
        frame["label"] = labels
        return env.train(dataset=env.csv("labels.csv", frame))
    return setup


CASES: dict[str, Case] = {
    # ------------------------------------------------------------------ flags and config files
    "non-number epochs": Case(lambda e: e.train("--epochs", "many"), 2,
                              "invalid settings: epochs: must be a whole number, not 'many'"),
    "negative learning rate": Case(lambda e: e.train("--learning-rate", "-0.1"), 2,
                                   "learning_rate: must be at least 1e-08"),
    "unknown experiment tracker": Case(lambda e: e.train("--report-to", "mlflow"), 2, "report_to: must be one of"),
    "zero batch size": Case(lambda e: e.train("--batch-size", 0), 2, "batch_size: must be at least 1"),
    "non-number max length": Case(lambda e: e.train("--max-length", "long"), 2, "max_length: must be a whole number"),
    "seed out of range": Case(lambda e: e.train("--seed", 2**40), 2, "seed: must be at most 4294967295"),
    "max length above the model's positions": Case(
        lambda e: e.train("--max-length", 8192), 2,
        "max_length: 8192 is more than tiny0 takes (512 tokens); use at most 512"),
    "unknown flag": Case(lambda e: e.train("--epoch", 3), 2, "unrecognized arguments: --epoch 3 (see sentitune train --help)"),
    "unknown command": Case(lambda e: ["fly"], 2, "(see sentitune --help)"),
    "config typo": Case(lambda e: e.train("--config", e.write("c.toml", "lerning_rate = 1e-4\n")), 2,
                        "lerning_rate: unknown setting; did you mean 'learning_rate'?"),
    "config not TOML": Case(lambda e: e.train("--config", e.write("c.toml", "epochs: 3\n")), 2, "is not valid TOML"),
    "config file missing": Case(lambda e: e.train("--config", e.tmp / "none.toml"), 2, "config: file not found"),
    "config key set twice": Case(
        lambda e: e.train("--config", e.write("c.toml", "epochs = 2\n[optimisation]\nepochs = 3\n")), 2,
        "epochs: set twice in c.toml (in the top level and in [optimisation]); keep one"),
    "config value of the wrong type": Case(lambda e: e.train("--config", e.write("c.toml", 'epochs = "three"\n')), 2,
                                           "epochs: must be a whole number, not 'three'"),
    "config shares leave no training data": Case(
        lambda e: e.train("--config", e.write("c.toml", "val_fraction = 0.4\ntest_fraction = 0.4\n")), 2,
        "validation + test shares must leave at least 40% for training"),
    "fp16 on a CPU": Case(lambda e: e.train("--config", e.write("c.toml", 'precision = "fp16"\n')), 2,
                          "fp16 needs a GPU"),
    "CUDA asked for without a GPU": Case(lambda e: e.train("--config", e.write("c.toml", 'device = "cuda"\n')), 2,
                                         "CUDA was asked for but no CUDA GPU is visible"),
    "auto-batch with several processes": Case(lambda e: e.train("--auto-batch", "--num-processes", 2), 2,
                                              "--auto-batch retries a single process"),
    # ------------------------------------------------------------------ data files
    "missing dataset": Case(lambda e: e.train(dataset=e.tmp / "nope.csv"), 2, "dataset file not found:"),
    "folder without data files": Case(lambda e: e.train(dataset=_folder(e, "empty-dir")), 2, "holds no .csv"),
    "unsupported file type": Case(lambda e: e.train(dataset=e.write("data.xlsx", b"PK\x03\x04")), 2,
                                  "unsupported file type; use one of .csv, .tsv, .json, .jsonl, .parquet"),
    "empty file": Case(lambda e: e.train(dataset=e.write("empty.csv", "")), 2,
                       "is empty; it needs a header row and labelled rows"),
    "header only": Case(lambda e: e.train(dataset=e.write("header.csv", "text,label\n")), 2, "has no rows"),
    "binary file": Case(lambda e: e.train(dataset=e.write("binary.csv", bytes(range(256)) * 40)), 2,
                        "binary.csv is not text ("),
    "CSV full of NUL bytes": Case(lambda e: e.train(dataset=e.write("nul.csv", b"text,label\n" + b"\x00" * 500)), 2,
                                  "is not text (it holds binary data)"),
    "unclosed quote in a CSV": Case(lambda e: e.train(dataset=e.write("quote.csv", 'text,label\n"never closed,1\n')), 2,
                                    "cannot read"),
    "JSON that is not rows": Case(lambda e: e.train(dataset=e.write("scalar.json", '{"a": 1, "b": 2}')), 2,
                                  "no text column found; columns are: a, b"),
    "JSON that is not JSON": Case(lambda e: e.train(dataset=e.write("broken.json", '{"text": "x", ')), 2,
                                  "line 1 of broken.json is not complete JSON"),
    "corrupt parquet": Case(lambda e: e.train(dataset=e.write("broken.parquet", b"PAR1 not really")), 2,
                            "cannot read"),
    "parquet bytes that are not UTF-8": Case(lambda e: e.train(dataset=_non_utf8_parquet(e)), 2,
        "column 'text' holds binary data that is not UTF-8 text (row 1)"),
    "nested object in the text column": Case(_nested("text", {"title": "x"}), 2,
                                             "column 'text' holds nested values (an object in row 4)"),
    "nested list in the label column": Case(_nested("label", [0, 1]), 2,
                                            "column 'label' holds nested values (a list in row 4)"),
    "one class only": Case(lambda e: e.train(dataset=e.csv("one.csv", reviews_frame(40, labels=("pos", "pos")))), 2,
                           "only one label (pos)"),
    "no labels at all": Case(_bad_label_frame([""] * 40), 2, "no rows with both text and a label"),
    "too many label values": Case(_bad_label_frame([f"class {i}" for i in range(60)]), 2,
                                  "60 different values, too many for labels"),
    "non-integer numbers as labels": Case(_bad_label_frame([i / 7 for i in range(40)]), 2,
                                          "different non-integer numbers"),
    "wrong text column": Case(lambda e: e.train("--text-columns", "review"), 2,
                              "text column 'review' not found; columns are: text, label"),
    "wrong label column": Case(lambda e: e.train("--label-column", "stars"), 2,
                               "label column 'stars' not found; columns are: text, label"),
    "too few rows": Case(lambda e: e.train(dataset=e.csv("few.csv", reviews_frame(6))), 2, "too few rows"),
    "hub dataset not cached while offline": Case(
        lambda e: _offline(e) or e.train(dataset="someone/not-cached-reviews"), 2,
        "dataset 'someone/not-cached-reviews' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"),
    # ------------------------------------------------------------------ models
    "model folder missing": Case(lambda e: _train_with_model(e, e.tmp / "no-model"), 2, "model folder not found:"),
    "model path is a file": Case(lambda e: _train_with_model(e, e.good), 2, "is a file; give the folder"),
    "model folder without config.json": Case(
        lambda e: _train_with_model(e, e.model_copy(drop=("config.json",))), 2, "has no config.json"),
    "model folder with a corrupt config.json": Case(
        lambda e: _train_with_model(e, _damaged_model(e, "config.json", b"{oops")), 2,
        "cannot load the model config from folder"),
    "model folder without tokenizer": Case(
        lambda e: _train_with_model(e, e.model_copy(drop=("tokenizer.json", "tokenizer_config.json",
                                                           "special_tokens_map.json", "vocab.txt"))),
        2, "no tokenizer in"),
    "corrupt weights in the model folder": Case(
        lambda e: _train_with_model(e, _damaged_model(e, "model.safetensors", b"\x00" * 64)), 2,
        "cannot load the model from folder"),
    "hub model not cached while offline": Case(
        lambda e: _offline(e) or _train_with_model(e, "someone/not-cached-model"), 2,
        "model 'someone/not-cached-model' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"),
    # ------------------------------------------------------------------ the runs folder and the disk
    "runs folder is a file": Case(lambda e: e.train()[:-2] + ["--output-dir", str(e.good)], 2,
                                  "is a file; choose a folder with --output-dir"),
    "runs folder under a file": Case(lambda e: e.train()[:-2] + ["--output-dir", str(e.good / "runs")], 2,
                                     "cannot write to"),
    "runs folder on a read-only file system": Case(
        lambda e: e.train()[:-2] + ["--output-dir", "/sys/sentitune-runs"], 2, "cannot write to /sys/sentitune-runs"),
    "disk already full": Case(lambda e: _disk_with_free(e, 2**20) or e.train(), 2, "only 1 MB free on the disk holding"),
    "disk fills as the run folder is made": Case(_disk_full_at_folder, 2, "is full; free some space"),
    "detached start with a missing model": Case(
        lambda e: _train_with_model(e, e.tmp / "no-model") + ["--detach"], 2, "model folder not found:"),
    "detached start with unreadable data": Case(
        lambda e: e.train("--detach", dataset=e.write("binary.csv", bytes(range(256)) * 40)), 2, "is not text"),
    "detached start with one class": Case(
        lambda e: e.train("--detach", dataset=e.csv("one.csv", reviews_frame(40, labels=("pos", "pos")))), 2,
        "only one label (pos)"),
    # ------------------------------------------------------------------ predict
    "predict empty review": Case(lambda e: ["predict", str(e.finished), " "], 2,
                                 "the review is empty; type some text to predict"),
    "predict missing file": Case(lambda e: ["predict", str(e.finished), "--file", str(e.tmp / "reviews.txt")], 2,
                                 "file not found:"),
    "predict a folder as file": Case(lambda e: ["predict", str(e.finished), "--file", str(e.tmp)], 2,
                                     "is a folder; give a .txt"),
    "predict a binary file": Case(lambda e: ["predict", str(e.finished), "--file",
                                             str(e.write("r.txt", bytes(range(256)) * 40))], 2, "is not text"),
    "predict a CSV without a text column": Case(
        lambda e: ["predict", str(e.finished), "--file", str(e.write("r.csv", "id,score\n1,2\n"))], 2,
        "no text column in r.csv; columns are: id, score"),
    "predict --save into a missing folder": Case(
        lambda e: ["predict", str(e.finished), "fine", "--save", str(e.tmp / "nope" / "out.csv")], 2,
        "does not exist; create it or save somewhere else", _no_file("nope")),
    "predict --save onto a folder": Case(lambda e: ["predict", str(e.finished), "fine", "--save", str(e.tmp)], 2,
                                         "is a folder; give a file to save to"),
    "predict --save over its own input": Case(
        lambda e: ["predict", str(e.finished), "--file", str(e.write("in.csv", "text,label\nfine,positive\n")),
                   "--save", str(e.tmp / "in.csv")], 2, "is the file being predicted",
        _file_is("in.csv", "text,label\nfine,positive\n")),
    "predict with corrupt weights": Case(
        lambda e: ["predict", str(_damaged_run(e, "model/model.safetensors", "\x00" * 64)), "fine"], 2,
        "cannot load the model in"),
    "predict with a damaged calibration.json": Case(
        lambda e: ["predict", str(_damaged_run(e, "model/calibration.json", "{oops")), "fine"], 2,
        "delete it to use the uncalibrated model"),
    "predict with a calibration temperature of 0": Case(
        lambda e: ["predict", str(_damaged_run(e, "model/calibration.json", '{"temperature": 0}')), "fine"], 2,
        "holds no positive temperature; delete it"),
    "run whose metrics.json has a reliability bin of text": Case(
        _runs_listing({"metrics.json": '{"validation": [], "reliability": [{"count": "x"}]}'}), 0, "broken-run"),
    "predict from a folder that is neither run nor model": Case(
        lambda e: ["predict", str(e.tmp), "fine"], 2, "is neither a run folder nor a model folder"),
    # ------------------------------------------------------------------ run folders
    "run folder missing": Case(lambda e: ["evaluate", str(e.runs / "nope"), "--output-dir", str(e.runs)], 2,
                               "no run folder"),
    "run with corrupt config": Case(
        lambda e: ["evaluate", str(_damaged_run(e, "config.json", "{not json"))], 2,
        "config.json is not valid JSON; the run folder is damaged"),
    "run whose config.json is a list": Case(
        lambda e: ["evaluate", str(_damaged_run(e, "config.json", "[]"))], 2,
        "config.json in copy holds a JSON list, not an object"),
    "run whose config holds bad settings": Case(
        lambda e: ["evaluate", str(_damaged_run(e, "config.json", '{"config": {"epochs": "x"}}'))], 2,
        "config.json of run copy holds invalid settings"),
    "evaluate a run whose status.json is a list (it is not needed)": Case(_with_status("[]", "evaluate"), 0,
                                                                          "accuracy"),
    "stop a run whose status.json is a list": Case(_with_status("[]", "stop"), 2,
                                                   "status.json in copy holds a JSON list"),
    "stop a run with a non-numeric time": Case(_with_status('{"status": "running", "updated": "soon"}', "stop"), 2,
                                               "status.json: 'updated' holds a JSON string"),
    "attach to a run whose status is a string": Case(_with_status('"running"', "attach"), 2,
                                                     "holds a JSON string, not an object"),
    "run without a model": Case(lambda e: ["predict", str(e.run_copy(drop=("model",))), "hello"], 2,
                                "has no saved model"),
    "resume without checkpoint": Case(lambda e: ["resume", str(e.finished)], 2,
                                      "has no complete checkpoint to resume from"),
    "resume after the data changed": Case(
        lambda e: ["resume", str(_resumable_copy(e, _add_rows))], 2,
        "changed since it started", _status_unchanged("resumable")),
    "resume after the data gained a class": Case(
        lambda e: ["resume", str(_resumable_copy(e, lambda p: _add_rows(p, "mixed")))], 2,
        "its labels were negative, positive and are now", _status_unchanged("resumable")),
    "stop a finished run": Case(lambda e: ["stop", str(e.finished)], 2, "is not running (it is finished)"),
    "attach to a folder that is not a run": Case(lambda e: ["attach", str(_folder(e, "plain"))], 2,
                                                 "is not a sentitune run"),
    "attach to a finished run without events": Case(
        lambda e: ["attach", str(e.run_copy(drop=("events.jsonl",)))], 2,
        "is finished and has no events.jsonl to show"),
    "evaluate on a dataset with other labels": Case(
        lambda e: ["evaluate", str(e.finished), "--dataset",
                   str(e.csv("other.csv", reviews_frame(40, labels=("bad", "good"))))], 2,
        "are not ones the model knows"),
    "evaluate on a missing dataset": Case(lambda e: ["evaluate", str(e.finished), "--dataset", str(e.tmp / "x.csv")],
                                          2, "dataset file not found"),
    "preview of a binary file": Case(lambda e: ["data", "--dataset", str(e.write("b.csv", bytes(range(256)) * 40)),
                                                "--model", str(e.model)], 2, "is not text"),
    "runs folder with a run whose status is a list": Case(_runs_listing({"status.json": "[]"}), 0, "unreadable"),
    "runs --json with wrong metric types": Case(
        _runs_listing({"metrics.json": '{"validation": [{"f1": "high"}], "test": []}'}, "--json"), 0,
        '"name": "broken-run"'),
    "export without a format": Case(lambda e: ["export", str(e.finished)], 2, "say which format to export to"),
    "export into a folder that is not an export": Case(
        lambda e: ["export", str(e.finished), "--onnx", "--to", str(e.write("notes.txt", "x").parent)], 2,
        "holds more than an ONNX export", _file_is("notes.txt", "x")),
    "export into an export folder holding a file of the student's": Case(
        lambda e: ["export", str(e.finished), "--onnx", "--to", str(_export_with_notes(e))], 2,
        "holds more than an ONNX export", _file_is("exp/notes.txt", "mine")),
    "export a run without a model": Case(lambda e: ["export", str(e.run_copy(drop=("model",))), "--onnx"], 2,
                                         "has no saved model"),
    "export a run that is still training": Case(lambda e: ["export", str(_training_without_model(e)), "--onnx"], 2,
                                                "is still training: its model is saved when it ends"),
    "predict with an ONNX export missing its tokenizer": Case(
        lambda e: ["predict", str(_onnx_without_tokenizer(e)), "great"], 2,
        "its files are incomplete or damaged: export it again"),
    "predict with a damaged ONNX export": Case(lambda e: ["predict", str(_damaged_onnx(e)), "great"], 2,
                                               "export it again"),
    "push to a repository without an owner": Case(lambda e: _push(e, "sentiment"), 2, "give USER/NAME"),
    "push with the Hub switched off": Case(lambda e: _push(e, "me/sentiment", HF_HUB_OFFLINE="1"), 2,
                                           "HF_HUB_OFFLINE is set"),
    "push a run without a model": Case(lambda e: ["push", str(e.run_copy(drop=("model",))), "--repo", "me/x"], 2,
                                       "has no saved model"),
    "runs --json with a config.json list": Case(_runs_listing({"config.json": "[1, 2]"}, "--json"), 0,
                                                '"status": "unreadable"'),
    **EXPERIMENT_CASES,
    **RUN_LIFE_CASES,
    **DATA_CASES,
    **OUTPUT_CASES,
}


@pytest.fixture()
def env(tmp_path, tiny_model, trained_run, monkeypatch) -> Env:
    good = tmp_path / "good.csv"
    reviews_frame(80).to_csv(good, index=False)
    return Env(tmp_path, tiny_model, good, trained_run[0].run_dir, monkeypatch)


def test_the_table_has_at_least_sixty_cases():
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_table(name, env, capsys):
    case = CASES[name]
    before = {p.name: p.stat().st_mtime_ns for p in env.finished.iterdir()}
    argv = case.setup(env)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    assert code == case.code, err or out
    assert "Traceback" not in out + err
    if case.code == 0:
        assert case.says in out and err == ""
    else:
        assert len(err.strip().splitlines()) == 1, err
        assert case.says in err, err
    assert not env.runs.exists() or not [p for p in env.runs.iterdir() if not p.name.startswith(".")]
    assert {p.name: p.stat().st_mtime_ns for p in env.finished.iterdir()} == before
    if case.after is not None:
        case.after(env)


def test_runs_listing_shows_every_other_run_beside_a_broken_one(env, capsys):
    assert main(_runs_listing({"status.json": "[]"}, "--json")(env)) == 0
    rows = {json.loads(line)["name"]: json.loads(line) for line in capsys.readouterr().out.splitlines()}
    assert rows["good-run"]["status"] == "finished" and rows["good-run"]["test_accuracy"] is not None
    assert rows["broken-run"]["status"] == "unreadable" and "holds a JSON list" in rows["broken-run"]["error"]


def test_huge_review_is_truncated_not_rejected(tmp_path, tiny_config):
    frame = reviews_frame(80)
    frame.loc[0, "text"] = "great " * 200_000  # about 1.2 MB in one review
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)
    from core.data.clean import prepare

    data = prepare(tiny_config.replace(dataset=str(path)))
    assert max(len(t) for s in data.splits.values() for t in s["text"]) > 1_000_000


def test_events_with_a_corrupt_line_still_load(trained_run, tmp_path):
    from core.events import read_events

    lines = (trained_run[0].run_dir / "events.jsonl").read_text().splitlines()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines[:3] + ["{garbage", "\x00\x01"] + lines[3:]) + "\n")
    assert len(read_events(path)) == len(lines)
    assert json.loads(lines[0])["event"] == "StageChanged"
