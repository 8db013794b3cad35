"""Pilot harness: the real HermesApp with its real gateway, against the scripted model."""

from __future__ import annotations

import asyncio

from hermes_tui.app import HermesApp


async def wait_until(pilot, predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met on screen")
        await pilot.pause(0.02)


async def ready(app: HermesApp, pilot) -> None:
    """Wait for the gateway to start and the screen to load the local session."""
    await wait_until(pilot, lambda: app.main_screen.current_key is not None, timeout=10)
    await pilot.pause()
