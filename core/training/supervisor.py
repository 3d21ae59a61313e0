"""Supervise a multi-process run: start `accelerate launch`, and if it fails, record which rank failed and why.

    python -m core.training.supervisor RUN_DIR -- COMMAND...

Rank 0 writes the run's status itself; this only steps in when the processes ended without a final
status (a rank crashed and the launcher tore the others down).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from core.errors import RunError
from core.runs import layout
from core.runs.layout import LIVE, RunStatus
from core.runs.store import read_run_file, write_status


def failure_message(run_dir: Path, returncode: int) -> str:
    """The first failing rank's own message, or the exit code with where to look."""
    for path in sorted(run_dir.glob("failure.rank*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return f"rank {data['rank']} failed: {data['message']}"
        except (OSError, ValueError, KeyError):
            continue
    return f"the training processes exited with code {returncode}; see process.log in the run folder"


def supervise(run_dir: Path, command: list[str]) -> int:
    import os

    from core.runs.control import LOCK_HELD_VARIABLE, claim

    # Held here, for the ranks (rank 0 writes the run's files): free only once every process has ended.
    lock = claim(run_dir)
    process = subprocess.Popen(command, env={**os.environ, LOCK_HELD_VARIABLE: str(run_dir.resolve())})

    def forward(signum, frame):
        # Stop & save: rank 0 sees SIGTERM, and every rank sees the stop file at its next step.
        from core.runs.layout import STOP_FILE

        (run_dir / STOP_FILE).touch()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = process.wait()
    try:
        state = read_run_file(run_dir / layout.STATUS).get("status")
    except RunError:
        state = None
    if code != 0 and state in (None, *LIVE):
        write_status(run_dir, RunStatus.FAILED, failure_message(run_dir, code))
    if lock is not None:
        lock.release()
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m core.training.supervisor RUN_DIR -- COMMAND...", file=sys.stderr)
        return 2
    return supervise(Path(argv[0]), argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
