"""What the app tests share: the terminal size they run at and waiting on a condition."""

from __future__ import annotations

import asyncio
import time

SIZE = (100, 30)


async def wait_for(pilot, predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until predicate() holds (AssertionError naming `what` after timeout)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def press_to_exit(pilot, key: str, timeout: float = 30.0) -> None:
    """Press the key that ends the app and wait until it has: pilot.press would then wait for
    the screen to process its messages, which a screen torn down mid-wait never does."""
    pilot.app.simulate_key(key)
    await wait_for_exit(pilot.app, timeout)


async def wait_for_exit(app, timeout: float = 30.0) -> None:
    """pilot.pause() waits for the screen to go idle, which a closing app may never do."""
    deadline = time.monotonic() + timeout
    while app.is_running:
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app to exit")
        await asyncio.sleep(0.05)


async def wait_for_live(pilot, predicate, timeout: float = 20.0,
                        what: str = "condition") -> None:
    """wait_for for an app that follows a live run: such a screen never goes idle, so this
    sleeps on the event loop instead of pilot.pause()."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
