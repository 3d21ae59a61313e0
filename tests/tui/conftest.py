"""Fixtures for screen tests: an app on a temporary runs folder with the tiny model."""

from __future__ import annotations

import pytest

from tests.tui.fake_runs import write_fake_run
from tests.tui.waiting import record_notifications


@pytest.fixture()
def runs_root(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    return root


@pytest.fixture()
def make_app(runs_root, tiny_config):
    """Build the app on the temporary runs folder, tiny-model config and no device detection."""
    from tui.app import create_app

    def factory(config=None, **kwargs):
        app = create_app(runs_root, config or tiny_config, detect_device=False, **kwargs)
        app.seen_notifications = record_notifications(app)  # what the app told the user, for assertions
        return app

    return factory


@pytest.fixture()
def finished_runs(runs_root, trained_run):
    """Two deterministic finished runs (the newer one better), both with a working tiny model."""
    model = trained_run[0].run_dir / "model"
    older = write_fake_run(runs_root, "20260101-120000-tiny-reviews", model_dir=model, created=1_790_000_000.0)
    newer = write_fake_run(runs_root, "20260102-120000-tiny-reviews", model_dir=model, quality=0.05,
                           created=1_790_086_400.0)
    return older, newer
