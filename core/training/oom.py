"""Running out of GPU memory: what to retry with, and freeing what the failed attempt held."""

from __future__ import annotations

from core.config import TrainConfig


def half_batch(config: TrainConfig, evaluating: bool = False) -> TrainConfig | None:
    """The config to retry after running out of memory, or None when the batch is already 1.

    Training: half the per-device batch and twice the accumulation (the same effective batch).
    Evaluating: half the evaluation batch.
    """
    if evaluating:
        return config.replace(eval_batch_size=config.eval_batch_size // 2) if config.eval_batch_size > 1 else None
    if config.batch_size < 2:
        return None
    return config.replace(batch_size=config.batch_size // 2, gradient_accumulation=config.gradient_accumulation * 2)


def oom_message(config: TrainConfig, evaluating: bool = False) -> str:
    """What ran out and what to change; when other processes hold much of the GPU, they are named first: on a
    shared box the batch size may not be the cause at all."""
    from core.training.gpus import oom_blame

    blame = oom_blame()
    if blame is not None:
        return (f"the GPU ran out of memory: {blame}; wait until they finish (wait_for_gpu waits for room), use "
                f"another GPU (CUDA_VISIBLE_DEVICES), or lower batch_size (now {config.batch_size}) or max_length")
    if evaluating:
        return (f"the GPU ran out of memory while evaluating at eval_batch_size {config.eval_batch_size}; "
                f"set eval_batch_size {max(config.eval_batch_size // 2, 1)} or lower max_length")
    half = max(config.batch_size // 2, 1)
    return (
        f"the GPU ran out of memory at batch_size {config.batch_size}; set batch_size {half} and "
        f"gradient_accumulation {config.gradient_accumulation * 2} (same effective batch) or lower max_length"
    )


def release_failure(exc: BaseException | None) -> None:
    """Free what a failed run's exception keeps alive (model, gradients, optimizer state in its frames).

    Call before retrying after running out of memory: a traceback holds every frame's locals.
    """
    import gc
    import traceback

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        tb = exc.__traceback__
        while tb is not None:
            # Before Python 3.13 a frame keeps a snapshot of its locals once anyone has read f_locals (Rich's
            # traceback rendering does); reading it again after clearing syncs that snapshot to empty.
            _ = tb.tb_frame.f_locals
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
