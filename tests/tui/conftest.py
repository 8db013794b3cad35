"""Pilot harness: the real HermesApp with its real gateway, against the scripted model."""

from __future__ import annotations

import asyncio

from hermes_tui.app import HermesApp


async def wait_until(pilot, predicate, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met on screen")
        await pilot.pause(0.02)


async def ready(app: HermesApp, pilot) -> None:
    """Wait for the gateway to start and the screen to load the local session."""
    await wait_until(pilot, lambda: app.main_screen.current_key is not None, timeout=10)
    await pilot.pause()


# --- SVG snapshots live in the top-level snapshots/ folder, reviewed like code ----------------

from pathlib import Path  # noqa: E402

import pytest_textual_snapshot  # noqa: E402

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "snapshots"


def _snapshot_dirname(cls, *, test_location) -> str:
    return str(SNAPSHOT_DIR / Path(test_location.filepath).stem)


# pytest-textual-snapshot hard-codes its syrupy extension in snap_compare, so its dirname is
# the one hook: point it at snapshots/<test module>/.
pytest_textual_snapshot.SVGImageExtension.dirname = classmethod(_snapshot_dirname)
