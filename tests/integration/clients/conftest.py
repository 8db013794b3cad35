"""What every real-client test shares: no connection may leave 127.0.0.1, and an API server
on a whole gateway backed by the fake model server (see ``api_harness``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.integration.api_harness import ApiHarness, only_loopback, start_api


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    only_loopback(monkeypatch)


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()
