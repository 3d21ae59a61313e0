"""Waiting in Pilot tests for something a worker thread makes true, and what the app notified."""

import asyncio
from types import SimpleNamespace


async def wait_for(pilot, condition, timeout: float = 120.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds, saying what the app was doing."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            app = pilot.app
            progress = getattr(app, "progress", None)
            raise AssertionError(
                f"timed out; screen={type(app.screen).__name__} training={getattr(app, 'training', None)} "
                f"status={getattr(progress, 'status', None)} stage={getattr(progress, 'stage', None)} "
                f"notifications={[n.message for n in getattr(app, 'seen_notifications', [])]}"
            )
        await pilot.pause(0.05)


async def until(condition, timeout: float = 30.0) -> None:
    """Wait for `condition()` without driving the app (for after it has exited)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)


def record_notifications(app) -> list:
    """Every notification `app` shows from now on (message, title, severity), seen through its public notify()."""
    seen = []
    real = app.notify

    def notify(message, *, title="", severity="information", **kwargs):
        seen.append(SimpleNamespace(message=str(message), title=title, severity=severity))
        return real(message, title=title, severity=severity, **kwargs)

    app.notify = notify
    return seen
