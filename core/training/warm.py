"""Work a run would do first, done while the student reads the Start question: the app then starts training sooner.

In a fresh app, the imports a run needs (transformers' Trainer and model classes, accelerate, datasets) take about
6 seconds on a 2-core machine; CUDA's context takes a few more on a GPU. Both are done here, in a worker thread, as
soon as the question shows. CUDA is started only where the GPU is already decided (CUDA_VISIBLE_DEVICES set, or CUDA
started by an earlier run in this process): otherwise the run first picks the GPU with room (core.training.gpus),
which must happen before CUDA starts.
"""

from __future__ import annotations

import os

from core.config import TrainConfig


def warm_up(config: TrainConfig) -> list[str]:
    """Import what a run of `config` imports and start CUDA where that is safe; what was done, for the log.

    Never raises: whatever fails here fails again, with its proper message, when the run starts.
    """
    done = []
    try:
        import accelerate  # noqa: F401
        import datasets  # noqa: F401
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer  # noqa: F401

        import core.training.job  # noqa: F401
        import core.training.trainer  # noqa: F401
        done.append("imports")
        from core.training.model import resolve_device

        if resolve_device(config.device) == "cuda" and cuda_decided():
            import torch

            torch.cuda.init()
            done.append("cuda")
    except Exception:  # noqa: BLE001 - the run says what is wrong
        pass
    return done


def cuda_decided() -> bool:
    """Whether this process's GPU is already fixed, so starting CUDA now takes no choice away from the run."""
    import torch

    return os.environ.get("CUDA_VISIBLE_DEVICES") is not None or torch.cuda.is_initialized()
