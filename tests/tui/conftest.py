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


class _SharedParses:
    """Parsed CSS shared by every app the tests start (each parses the same stylesheets anew otherwise: a third
    of a second per app), keyed also by the CSS variables they were parsed with. Parsed rules are not changed
    after parsing; a theme change clears only what the app itself sees."""

    store: dict = {}

    def __init__(self, stylesheet) -> None:
        self.stylesheet = stylesheet

    def _key(self, key):
        return key, tuple(sorted(self.stylesheet._variables.items()))

    def __getitem__(self, key):
        return self.store[self._key(key)]

    def __setitem__(self, key, value) -> None:
        self.store[self._key(key)] = value

    def clear(self) -> None:
        pass  # new variables make new keys


@pytest.fixture(autouse=True, scope="session")
def _share_parsed_css():
    from textual.css.stylesheet import Stylesheet

    original = Stylesheet.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if hasattr(self, "_parse_cache") and isinstance(getattr(self, "_variables", None), dict):
            self._parse_cache = _SharedParses(self)  # (another Textual may keep its cache elsewhere: then not)

    Stylesheet.__init__ = init
    yield
    Stylesheet.__init__ = original
