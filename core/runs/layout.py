"""The run folder's layout: every file and folder name a run holds, and the statuses a run can be in.

The one place these are spelled; everything else refers to them by name.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """What status.json says (or what a reader makes of it); compares equal to the plain string."""

    STARTING = "starting"  # a run whose process is starting (loading its data and model)
    WAITING = "waiting"  # a run waiting for a GPU with room (wait_for_gpu)
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    PRUNED = "pruned"  # a sweep's point stopped by its pruner: behind the others at the same quarter epoch (saved, as a stop)
    INTERRUPTED = "interrupted"  # said "running" but its process is gone (killed, machine rebooted)
    UNREADABLE = "unreadable"  # its files are damaged or of the wrong shape
    UNKNOWN = "unknown"  # no usable status.json


LIVE = (RunStatus.STARTING, RunStatus.WAITING, RunStatus.RUNNING)
ENDED = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.PRUNED)

CONFIG = "config.json"  # the effective config, versions, device, labels, data notes, split fingerprint
STATUS = "status.json"
EVENTS = "events.jsonl"
METRICS = "metrics.json"
TEST_PREDICTIONS = "test_predictions.jsonl"
MODEL = "model"  # the best model and its tokenizer
CALIBRATION = "calibration.json"  # in MODEL: the temperature that calibrates its confidences
ONNX = "onnx"  # `sentitune export --onnx`: the model as ONNX, with its tokenizer, labels and max_length
ONNX_MODEL = "model.onnx"  # in ONNX (or any ONNX model folder)
EXPORT_RECORD = "export.json"  # in ONNX: how it was exported (quantized, max_length, versions, agreement)
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"  # the Trainer's TensorBoard event files, with report_to = tensorboard
TRAIN_LOG = "train.log"
PROCESS_LOG = "process.log"  # a detached run's own stdout and stderr
JOB = "job.toml"  # the settings a detached run's process reads
LAUNCHER_PID = "launcher.pid"  # leads the process group of a detached or multi-process run
LOCK = ".lock"
STOP_FILE = "stop.request"  # created by another process (`sentitune stop`, an attached app) to ask a run to stop


def rank_log(rank: int) -> str:
    """The log of a rank other than 0 (rank 0 writes train.log)."""
    return f"train.rank{rank}.log"


def rank_failure(rank: int) -> str:
    """Where a failing rank other than 0 writes its message for the supervisor."""
    return f"failure.rank{rank}.json"
