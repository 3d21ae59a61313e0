"""The bad-input table's cases for a run's life across processes: stopping, resuming, exporting and evaluating
a run that another process holds, or whose records point at someone else (merged into test_bad_input.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.core.bad_input_support import Case, Env

_HELD: list = []  # locks of runs that stand for live ones, kept until the session ends


def _held(env: Env, status: str = "running", drop: tuple[str, ...] = (), **record) -> Path:
    """A copy of the finished run that a live process holds (its lock taken here)."""
    from core.runs.lock import RunLock

    run = env.run_copy(drop=drop)
    (run / "status.json").write_text(json.dumps({"status": status, "updated": time.time(), "pid": os.getpid(),
                                                 "owner": "detached", **record}))
    _HELD.append(RunLock(run).acquire())
    return run


def _resumable(env: Env) -> Path:
    run = env.run_copy("resumable")
    checkpoint = run / "checkpoints" / "checkpoint-10"
    checkpoint.mkdir(parents=True)
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt", "model.safetensors"):
        (checkpoint / name).write_text("{}")
    (run / "stop.request").touch()
    return run


def _read_only_stop_request(env: Env) -> list[str]:
    """A resume whose folder refuses writes (a read-only mount): clearing the old stop request fails."""
    real = Path.unlink

    def unlink(path, missing_ok=False):
        if path.name == "stop.request":
            raise OSError(30, "Read-only file system")
        return real(path, missing_ok=missing_ok)

    env.monkeypatch.setattr(Path, "unlink", unlink)
    return ["resume", str(_resumable(env))]


def _untested(env: Env) -> Path:
    run = _held(env, status="starting")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["test"] = None
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def _unchanged(name: str, status: str) -> callable:
    def check(env: Env) -> None:
        assert json.loads((env.tmp / name / "status.json").read_text())["status"] == status
        assert not (env.tmp / name / "onnx").exists()
    return check


RUN_LIFE_CASES = {
    "resume in the background a run still training": Case(
        lambda e: ["resume", str(_held(e)), "--detach"], 2, "still running in another process",
        _unchanged("copy", "running")),
    "resume a run still training": Case(lambda e: ["resume", str(_held(e))], 2, "still running in another process",
                                        _unchanged("copy", "running")),
    "export a run that is being resumed": Case(lambda e: ["export", str(_held(e, status="starting")), "--onnx"], 2,
                                               "still running in another process", _unchanged("copy", "starting")),
    "evaluate an untested run that is being resumed": Case(lambda e: ["evaluate", str(_untested(e))], 2,
                                                           "still running in another process"),
    # This very process's pid, recorded by a start that died: a signal would end the test run itself.
    "stop a run whose recorded process is another": Case(
        lambda e: ["stop", str(_starting_without_a_holder(e))], 2, "is not running (it is interrupted)",
        _unchanged("copy", "starting")),
    "resume in a folder that cannot be written": Case(_read_only_stop_request, 2,
                                                     "cannot write in run resumable (Read-only file system)"),
}


def _starting_without_a_holder(env: Env) -> Path:
    run = env.run_copy()
    (run / "status.json").write_text(json.dumps({"status": "starting", "updated": time.time(), "pid": os.getpid(),
                                                 "child_pid": os.getpid(), "owner": "detached"}))
    return run
