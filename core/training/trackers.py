"""Experiment trackers the Trainer reports to (trackio, wandb), kept off the terminal.

Their callbacks print banners and links (`* Trackio project initialized...`) to stdout. Each one is wrapped
so whatever it prints while handling a Trainer event goes to the run's train.log: in the app it would land
on the terminal Textual draws, and on the command line between the progress lines.
"""

from __future__ import annotations

from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

TRACKER_CALLBACKS = ("TrackioCallback", "WandbCallback")


def quiet_trackers(trainer, log_path: Path) -> None:
    """Replace the trainer's tracker callbacks with ones that print into `log_path`."""
    from transformers import TrainerCallback

    class QuietTracker(TrainerCallback):
        def __init__(self, inner):
            self.inner, self.ended = inner, False

    def quiet(name: str):
        def event(self, *args, **kwargs):
            # After training the tracker's run is finished; the test scoring that follows would start it
            # again, and nothing would finish it until the process exits (printing as it does).
            if self.ended:
                return None
            self.ended = name == "on_train_end"
            with open(log_path, "a", encoding="utf-8") as sink, redirect_stdout(sink), redirect_stderr(sink):
                return getattr(self.inner, name)(*args, **kwargs)
        return event

    for name in dir(TrainerCallback):
        if name.startswith("on_"):
            setattr(QuietTracker, name, quiet(name))
    handler = trainer.callback_handler
    handler.callbacks = [QuietTracker(cb) if type(cb).__name__ in TRACKER_CALLBACKS else cb
                         for cb in handler.callbacks]
