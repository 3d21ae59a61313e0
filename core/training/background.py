"""Start a run in its own process (detached, or several processes under a supervisor); following and stopping
it are core.runs.control's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.config import TrainConfig, save_toml
from core.errors import RunError
from core.files import write_json_atomic
from core.runs import layout
from core.runs.control import Owner, claim, hand_down
from core.runs.layout import RunStatus
from core.runs.store import Run, create_run_dir, read_run_file, write_status
from core.training.preflight import disk_message


def start_detached(config: TrainConfig | None, runs_root: str | Path, resume_run: Path | None = None,
                   auto_batch: bool = False, run_dir: str | Path | None = None) -> Path:
    """Start training in a new process and session (it survives SIGHUP and the terminal closing).

    What can be checked here is checked first (the model, max_length, the runs folder, a local data
    file), so bad input is an error now rather than a failed run later. Returns the run folder at once;
    the child writes events.jsonl, status.json and train.log there, and its stdout/stderr go to `process.log`.
    """
    from core.training.distributed import launch_command, needs_launcher
    from core.training.preflight import check_data, preflight

    if resume_run is not None:
        run_dir = Path(resume_run)
        args = ["resume", str(run_dir)]
        config = Run(run_dir).train_config()
        # Refused while anything holds the run (a second resume, a run still training); the stop request that
        # ended the earlier process is spent.
        lock = claim(run_dir, resuming=True)
    else:
        preflight(config, runs_root if run_dir is None else Path(run_dir).parent)
        check_data(config)
        run_dir = create_run_dir(runs_root, config.model, config.dataset) if run_dir is None else _empty_folder(run_dir)
        lock = claim(run_dir)
        try:
            job = save_toml(config, run_dir / layout.JOB)
            # Listed at once (the process rewrites it in full once its data and model are loaded).
            write_json_atomic(run_dir / layout.CONFIG, {"config": config.to_dict(), "created": time.time()})
        except OSError as exc:
            lock.release()
            raise RunError(disk_message(exc, run_dir.parent)) from None
        args = ["train", "--config", str(job), "--run-dir", str(run_dir)] + (["--auto-batch"] if auto_batch else [])
    command = [sys.executable, "-m", "core.cli", *args]
    if needs_launcher(config):
        # N processes through accelerate, watched by a supervisor that records a failing rank's message.
        command = [sys.executable, "-m", "core.training.supervisor", str(run_dir), "--", *launch_command(config, args)]
    # The lock goes down to the process: the run is never free (never "interrupted") between here and its start.
    try:
        before = read_run_file(run_dir / layout.STATUS) if resume_run is not None else None
        # The process puts `before` back if it ends without training (stopped, or refused): nothing changed.
        write_status(run_dir, RunStatus.STARTING, owner=Owner.DETACHED, **({"before": before} if before else {}))
        with open(run_dir / layout.PROCESS_LOG, "ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # own session: no SIGHUP when the SSH session ends
                cwd=os.getcwd(), pass_fds=(lock.fd,),
                env={**os.environ, "PYTHONUNBUFFERED": "1", **hand_down(lock)},
            )
        write_status(run_dir, RunStatus.STARTING, None, child_pid=process.pid, **({"before": before} if before else {}))
        (run_dir / layout.LAUNCHER_PID).write_text(str(process.pid))  # leads its own process group
    except (OSError, RunError) as exc:
        if before is not None:  # a resume that could not start leaves the run as it was
            try:
                write_json_atomic(run_dir / layout.STATUS, before)
            except OSError:
                pass
        lock.release()
        if isinstance(exc, RunError):
            raise
        raise RunError(f"cannot start the run in the background: {disk_message(exc, run_dir)}") from None
    lock.hand_over()  # the child holds it now; closing ours does not unlock it
    return run_dir


def _empty_folder(path: str | Path) -> Path:
    """`path` as a new run folder: made if missing, refused when it already holds a run."""
    path = Path(path).expanduser()
    if (path / layout.CONFIG).exists() or (path / layout.STATUS).exists():
        raise RunError(f"{path} already holds a run; give a new folder (or resume that run)")
    path.mkdir(parents=True, exist_ok=True)
    return path
