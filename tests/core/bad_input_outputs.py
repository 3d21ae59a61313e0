"""The bad-input table's cases for what sentitune writes and where (saved predictions, JSON lines), the settings
and environment it starts from (config files, --max-samples, HF_ENDPOINT, a proxy), and the files it loads back
(a model's labels, a calibration, a checkpoint's states, a run killed at once) (merged into test_bad_input.py)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tests.core.bad_input_support import Case, Env

FORMULAS = ["=HYPERLINK(\"http://x.example\",\"click\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)",
            "\tplain tab", "a fine film"]


class _Tampered:
    """What a tampered optimizer.pt holds: a pickle that calls a function when it is loaded (a harmless one)."""

    def __reduce__(self):
        return os.getcwd, ()


def _reviews_file(env: Env) -> list[str]:
    path = env.tmp / "formulas.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text"])
        writer.writerows([t] for t in FORMULAS)
    return ["predict", str(env.finished), "--file", str(path), "--save", str(env.tmp / "out.csv")]


def _formulas_neutralised(env: Env) -> None:
    with (env.tmp / "out.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["text"] for r in rows] == ["'" + t for t in FORMULAS[:-1]] + [FORMULAS[-1]]
    assert all(float(r["confidence"]) > 0 and not r["confidence"].startswith("'") for r in rows)


def _run_with(env: Env, name: str, content: str) -> Path:
    copy = env.run_copy()
    (copy / name).write_text(content)
    return copy


def _model_with_labels(env: Env, count: int) -> Path:
    """A copy of the finished run's model whose config.json lists `count` labels (its weights have 2 outputs)."""
    copy = shutil.copytree(env.finished / "model", env.tmp / "relabelled")
    config = json.loads((copy / "config.json").read_text())
    config["id2label"] = {str(i): f"class{i}" for i in range(count)}
    config["label2id"] = {f"class{i}": i for i in range(count)}
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def _nan_model(env: Env) -> Path:
    """A copy of the finished run's model whose outputs are NaN (a run that diverged and was saved anyway)."""
    import torch
    from safetensors.torch import load_file, save_file

    copy = shutil.copytree(env.finished / "model", env.tmp / "diverged")
    (copy / "calibration.json").unlink(missing_ok=True)
    weights = load_file(copy / "model.safetensors")
    weights["classifier.bias"] = torch.full_like(weights["classifier.bias"], float("nan"))
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    return copy


def _endpoint(value: str, argv: Callable[[Env], list[str]]) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.monkeypatch.setenv("HF_ENDPOINT", value)
        env.monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        return argv(env)
    return setup


def _push(env: Env) -> list[str]:
    return ["push", str(env.finished), "--repo", "me/sentiment"]


def _dead_proxy(env: Env) -> list[str]:
    """A token, and HTTPS_PROXY naming a port where nothing listens (the discard port, refused at once)."""
    for name in ("https_proxy", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        env.monkeypatch.delenv(name, raising=False)
    env.monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    env.monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    return _push(env)


def _tampered_checkpoint(env: Env) -> list[str]:
    """A resumable copy of the finished run (its own data, a checkpoint) whose optimizer.pt runs code when loaded."""
    import torch

    run = env.run_copy("resumable")
    data = env.tmp / "run-data.csv"
    record = json.loads((run / "config.json").read_text())
    shutil.copy(record["config"]["dataset"], data)
    record["config"]["dataset"] = str(data)
    (run / "config.json").write_text(json.dumps(record))
    checkpoint = shutil.copytree(run / "model", run / "checkpoints" / "checkpoint-10")
    torch.save({"state": {}, "param_groups": [], "extra": _Tampered()}, checkpoint / "optimizer.pt")
    torch.save({"last_epoch": 10}, checkpoint / "scheduler.pt")
    (checkpoint / "trainer_state.json").write_text("{}")
    return ["resume", str(run)]


def _resumable_unchanged(env: Env) -> None:
    run = env.tmp / "resumable"
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert (run / "checkpoints" / "checkpoint-10" / "optimizer.pt").is_file()
    assert not (run / "stop.request").exists()


def _killed_at_start(events: int) -> Callable[[Env], list[str]]:
    """A copy of the finished run as a detached start killed at once leaves it: `starting`, nothing holding its
    lock, and none or only the first of its events."""
    def setup(env: Env) -> list[str]:
        run = env.run_copy()
        (run / "status.json").write_text(json.dumps({"status": "starting", "updated": time.time(),
                                                     "pid": os.getpid(), "owner": "detached"}))
        lines = (run / "events.jsonl").read_text().splitlines()
        (run / "events.jsonl").write_text("".join(line + "\n" for line in lines[:events]))
        if not events:
            (run / "events.jsonl").unlink()
        return ["attach", str(run)]
    return setup


def _still_starting(env: Env) -> None:
    assert json.loads((env.tmp / "copy" / "status.json").read_text())["status"] == "starting"


OUTPUT_CASES: dict[str, Case] = {
    # ------------------------------------------------------------------ what is saved
    "reviews that start a spreadsheet formula, saved to CSV": Case(
        _reviews_file, 0, f"saved {len(FORMULAS)} predictions to", _formulas_neutralised),
    "predict --json with a model whose outputs are NaN": Case(
        lambda e: ["predict", str(_nan_model(e)), "fine", "--json"], 0, '"confidence": null'),
    # ------------------------------------------------------------------ settings and environment
    "config that is a folder": Case(lambda e: e.train("--config", e.tmp), 2,
                                    "is a folder; give a .toml file"),
    "config saved with a UTF-8 byte order mark": Case(
        lambda e: ["data", "--config", str(e.write("bom.toml", "\ufeffmax_length = 32\n".encode())),
                   "--model", str(e.model), "--dataset", str(e.good)], 0, "truncated at max_length 32"),
    "max-samples of one row": Case(lambda e: e.train("--max-samples", 1), 2,
                                   "max_samples: 1 is too few rows to split into training, validation and test sets "
                                   "of both classes; use at least 10"),
    "HF_ENDPOINT that is not a web address, train": Case(
        _endpoint("not a url", lambda e: e.train()), 2, "HF_ENDPOINT is 'not a url', which is not a web address"),
    "HF_ENDPOINT that is not a web address, predict": Case(
        _endpoint("not a url", lambda e: ["predict", str(e.finished), "fine"]), 2,
        "HF_ENDPOINT is 'not a url', which is not a web address"),
    "HF_ENDPOINT with an unclosed bracket, push": Case(
        _endpoint("http://[::1", _push), 2, "HF_ENDPOINT is 'http://[::1', which is not a web address"),
    "push behind an HTTPS proxy that does not answer": Case(
        _dead_proxy, 2, "cannot reach the proxy http://127.0.0.1:9 that HTTPS_PROXY names"),
    # ------------------------------------------------------------------ files loaded back
    "model whose config.json lists more labels than its weights have outputs": Case(
        lambda e: ["predict", str(_model_with_labels(e, 3)), "fine"], 2,
        "lists 3 labels in id2label but its weights have 2 outputs"),
    "predict with a calibration temperature of 5e-324": Case(
        lambda e: ["predict", str(_run_with(e, "model/calibration.json", '{"temperature": 5e-324}')), "fine"], 2,
        "holds a temperature of 5e-324, outside 0.01 to 100 (a fitted one lies in 0.05 to 20); delete it"),
    "predict with an infinite calibration temperature": Case(
        lambda e: ["predict", str(_run_with(e, "model/calibration.json", '{"temperature": 1e999}')), "fine"], 2,
        "holds a temperature of inf, outside 0.01 to 100"),
    "resume from a checkpoint whose optimizer.pt was tampered with": Case(
        _tampered_checkpoint, 2, "optimizer.pt in checkpoint-10 of run resumable is damaged or was not written by "
        "sentitune; nothing was loaded from it: start a new run", _resumable_unchanged),
    "attach to a run killed as it started, no events": Case(
        _killed_at_start(0), 2, "was interrupted before training began", _still_starting),
    "attach to a run killed as it started, one event": Case(
        _killed_at_start(1), 2, "no checkpoint to resume from; start it again", _still_starting),
}
