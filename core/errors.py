"""Errors that `core` raises: each message is one line that tells the user what to do."""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error sentitune reports to a user (as opposed to a bug)."""

    title = "Error"
    #: Process exit code the CLI uses: 2 for bad input, 1 for a failure while running.
    exit_code = 2


class ConfigError(CoreError):
    """One or more configuration values are invalid."""

    title = "Invalid configuration"

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class DatasetError(CoreError):
    """The dataset cannot be found, read or turned into labelled rows."""

    title = "Dataset problem"


class ModelError(CoreError):
    """The model or its tokenizer cannot be loaded."""

    title = "Model problem"


class RunError(CoreError):
    """A run folder is missing, incomplete or unreadable."""

    title = "Run problem"


class PredictError(CoreError):
    """A prediction request cannot be served (empty text, bad file...)."""

    title = "Prediction problem"


class HubError(CoreError):
    """The Hugging Face Hub cannot be used: offline, no token, a refused repository."""

    title = "Hugging Face Hub"


class TrainingError(CoreError):
    """Training started but failed (out of memory, NaN loss...)."""

    title = "Training failed"
    exit_code = 1


class OutOfMemoryError(TrainingError):
    """The GPU ran out of memory; `retry_config` halves the batch and doubles accumulation."""

    title = "Out of GPU memory"

    def __init__(self, message: str, retry_config=None, run_dir=None):
        super().__init__(message)
        self.retry_config = retry_config
        self.run_dir = run_dir  # the failed run's folder
