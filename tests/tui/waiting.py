"""Waiting in Pilot tests for something a worker thread makes true."""

import asyncio


async def wait_for(pilot, condition, timeout: float = 120.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "timed out"
        await pilot.pause(0.05)
