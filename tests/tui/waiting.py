"""Waiting in Pilot tests for something a worker thread makes true."""

import asyncio


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
                f"notifications={[n.message for n in app._notifications]}"
            )
        await pilot.pause(0.05)
