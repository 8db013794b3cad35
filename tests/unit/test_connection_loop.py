"""The shared connection loop every long-lived platform connection runs in."""

from __future__ import annotations

import asyncio

import pytest

from hermes_gateway.backoff import Backoff
from hermes_gateway.models import SessionSource
from hermes_gateway.platforms.base import FatalPlatformError, PlatformAdapter
from hermes_gateway.platforms.connection import ConnectionLoop


class Recording(PlatformAdapter):
    name = "rec"

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[tuple[str, str, float | None]] = []
        self.changed = asyncio.Event()

    def report(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        self.reports.append((state, detail, retry_in))
        self.changed.set()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        pass


def loop_for(adapter: Recording) -> ConnectionLoop:
    return ConnectionLoop(adapter, "Rec", Backoff(0.01, 0.02, jitter=0))


async def test_start_returns_once_connected_and_reports_it_once() -> None:
    adapter = Recording()
    link = loop_for(adapter)
    ended = asyncio.Event()

    async def session() -> str:
        link.connected("as bot")
        link.connected("as bot")
        await ended.wait()
        return "ended"

    await link.start(session, wait=5, waiting="waiting")
    assert adapter.reports == [("connected", "as bot", None)]
    await link.stop()
    assert link.stopping


async def test_a_fatal_error_before_connecting_is_raised_from_start() -> None:
    adapter = Recording()
    link = loop_for(adapter)

    async def session() -> str:
        raise FatalPlatformError("TOKEN was refused")

    with pytest.raises(FatalPlatformError, match="TOKEN was refused"):
        await link.start(session, wait=5, waiting="waiting")


async def test_a_lost_connection_is_retried_with_backoff_and_a_later_fatal_error_is_failed() -> (
    None
):
    adapter = Recording()
    link = loop_for(adapter)
    attempts = 0

    async def session() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("connection refused")
        if attempts == 2:
            link.connected("up")
            return "socket closed"
        raise FatalPlatformError("token revoked")

    await link.start(session, wait=5, waiting="waiting")
    while link.state != "failed":
        adapter.changed.clear()
        await asyncio.wait_for(adapter.changed.wait(), 5)
    states = [(s, d) for s, d, _ in adapter.reports]
    assert states == [
        ("reconnecting", "connection refused"),
        ("connected", "up"),
        ("reconnecting", "socket closed"),
        ("failed", "token revoked"),
    ]
    assert all(r is not None for s, _, r in adapter.reports if s == "reconnecting")
    await link.stop()


async def test_start_stops_waiting_and_says_so_while_the_platform_keeps_trying() -> None:
    adapter = Recording()
    link = loop_for(adapter)
    release = asyncio.Event()

    async def session() -> str:
        await release.wait()
        link.connected("late")
        await asyncio.Event().wait()
        return "never"

    await link.start(session, wait=0.05, waiting="waiting for Rec")
    assert adapter.reports == [("reconnecting", "waiting for Rec", None)]
    release.set()
    await asyncio.wait_for(adapter.changed.wait(), 5)
    while link.state != "connected":
        adapter.changed.clear()
        await asyncio.wait_for(adapter.changed.wait(), 5)
    await link.stop()
