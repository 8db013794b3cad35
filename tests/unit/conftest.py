"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hermes_gateway.store import SessionStore, default_db_path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A fresh store in the test's own home, closed after the test."""
    s = await SessionStore.open(default_db_path(tmp_path / "home"))
    try:
        yield s
    finally:
        await s.close()
