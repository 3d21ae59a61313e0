"""Checkpoints written off the training loop: on disk before they are announced, never half-used, errors not lost."""

import errno
import shutil
import threading
from pathlib import Path

import pytest

from core.events import CheckpointSaved, StepLogged, read_events
from core.runs.checkpoints import is_complete, last_complete_checkpoint
from core.runs.layout import RunStatus
from core.training.checkpoint_writer import STAGING_PREFIX, CheckpointWriter


def test_checkpoints_are_written_by_another_thread_and_announced_once_on_disk(tiny_config, tmp_path, monkeypatch):
    import torch

    from core.training.train import train

    writers, real_save = set(), torch.save

    def recording_save(obj, path, *args, **kwargs):
        if str(path).endswith("optimizer.pt"):
            writers.add(threading.current_thread().name)
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", recording_save)
    announced = []

    def listen(event):
        if isinstance(event, CheckpointSaved):  # when said, the folder is whole (the run removes them at its end)
            announced.append((event.step, is_complete(Path(event.path))))

    result = train(tiny_config.replace(epochs=2, baseline=False), tmp_path, on_event=listen)
    assert result.status == RunStatus.FINISHED
    assert writers and threading.main_thread().name not in writers
    assert len(announced) == 2 and all(whole for _, whole in announced), announced
    assert [step for step, _ in announced] == sorted(step for step, _ in announced)


def test_a_failed_background_write_fails_the_run_and_keeps_the_checkpoint_before_it(tiny_config, tmp_path,
                                                                                     monkeypatch):
    import torch

    from core.training.train import resume, train

    calls, real_save = [], torch.save

    def full_disk_on_the_second(obj, path, *args, **kwargs):
        if str(path).endswith("optimizer.pt"):
            calls.append(path)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk_on_the_second)
    with pytest.raises(Exception) as failure:
        train(tiny_config.replace(epochs=3, baseline=False), tmp_path)
    assert "space" in str(failure.value).lower() or "full" in str(failure.value).lower()
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    kept = last_complete_checkpoint(run_dir)
    assert kept.name.endswith(f"-{int(Path(calls[0]).parent.name.split('-')[-1])}")  # the first epoch's, whole
    assert not list((run_dir / "checkpoints").glob(f"{STAGING_PREFIX}*"))  # the half-written one is gone
    monkeypatch.setattr(torch, "save", real_save)
    assert resume(run_dir).status == RunStatus.FINISHED  # one epoch lost at most


def test_a_folder_left_by_a_process_killed_mid_write_is_never_resumed_from(tiny_config, tmp_path):
    from core.training.train import resume, train

    stop = threading.Event()

    def stop_at_three(event):
        if isinstance(event, StepLogged) and event.step >= 3:
            stop.set()

    cut = train(tiny_config.replace(logging_steps=1, baseline=False), tmp_path, on_event=stop_at_three,
                stop_event=stop)
    checkpoints = cut.run_dir / "checkpoints"
    saved = last_complete_checkpoint(cut.run_dir)
    # What a kill during the next write leaves: a staging folder, newer and holding every file but the last.
    staging = checkpoints / f"{STAGING_PREFIX}checkpoint-999"
    shutil.copytree(saved, staging)
    assert last_complete_checkpoint(cut.run_dir) == saved
    resumed = resume(cut.run_dir)
    assert resumed.status == RunStatus.FINISHED and not staging.exists()
    resumes = [e for e in read_events(cut.run_dir / "events.jsonl") if type(e).__name__ == "Resumed"]
    assert resumes and resumes[-1].step == int(saved.name.split("-")[-1])


def test_the_writer_hands_its_error_to_the_next_wait_once(tmp_path):
    writer = CheckpointWriter()
    writing, release = threading.Event(), threading.Event()

    def slow_then_fail(folder):
        (folder / "optimizer.pt").write_text("part")
        writing.set()
        release.wait(10)
        raise OSError(errno.EROFS, "Read-only file system")

    writer.submit(tmp_path / "checkpoint-5", 5, slow_then_fail)
    assert writing.wait(10) and writer.busy and (tmp_path / f"{STAGING_PREFIX}checkpoint-5").is_dir()
    assert not (tmp_path / "checkpoint-5").exists()  # nothing named checkpoint-* until it is whole
    release.set()
    with pytest.raises(OSError, match="Read-only"):
        writer.wait()
    writer.wait()  # said once
    assert not any(tmp_path.iterdir()) and writer.written() == []
    writer.submit(tmp_path / "checkpoint-6", 6, lambda folder: (folder / "trainer_state.json").write_text("{}"))
    writer.wait()
    assert writer.written() == [(6, str(tmp_path / "checkpoint-6"))] and (tmp_path / "checkpoint-6").is_dir()


def test_warming_up_imports_and_starts_cuda_only_where_the_gpu_is_decided(tiny_config, monkeypatch):
    """The Start question's warm-up: never takes the GPU choice away from the run (CUDA starts only once decided)."""
    import torch

    import core.training.model as model
    from core.training.warm import warm_up

    started = []
    monkeypatch.setattr(torch.cuda, "init", lambda: started.append(True))
    assert warm_up(tiny_config.replace(device="cpu")) == ["imports"] and not started
    monkeypatch.setattr(model, "resolve_device", lambda requested: "cuda")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert warm_up(tiny_config) == ["imports"] and not started  # the run picks the GPU with room first
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert warm_up(tiny_config) == ["imports", "cuda"] and started
