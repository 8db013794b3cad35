"""What the aiohttp fake servers share: a real server on 127.0.0.1 (a free port), start/stop
as an async context manager, the requests seen, and waiting on a change of the fake.

A fake adds its routes in :meth:`AiohttpFake.routes`, calls :meth:`changed` whenever its state
changes (a message posted, a request refused), and closes what it holds open (websockets) in
:meth:`closing`. With ``calls_gateway`` it also gets a client session (``self.client``) for
posting to the gateway's webhook the way the real service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Self

import aiohttp
from aiohttp import web

__all__ = ["HOST", "AiohttpFake", "free_port"]

HOST = "127.0.0.1"


class AiohttpFake:
    """Base of a fake HTTP service; ``async with Fake() as fake`` starts and stops it."""

    client_max_size = 1024**2
    """Largest request body the server takes (aiohttp's default; raised for uploads)."""
    calls_gateway = False
    """The fake posts to the gateway (webhooks): it keeps a client session while running."""
    wait_timeout = 5.0
    """How long :meth:`wait_for` waits by default."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every API request, in order."""
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def routes(self, app: web.Application) -> None:
        """Add the service's routes."""
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if self.calls_gateway:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def closing(self) -> None:
        """Close what the fake holds open (websockets) before the server stops."""

    async def stop(self) -> None:
        await self.closing()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def client(self) -> aiohttp.ClientSession:
        """The session for calls to the gateway (only while a ``calls_gateway`` fake runs)."""
        assert self._client is not None, f"{type(self).__name__} is not running"
        return self._client

    # --- waiting on the fake ------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Until ``predicate()`` holds: re-checked on every change of the fake (and every
        0.25 s, for conditions that depend on the clock)."""
        limit = self.wait_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{type(self).__name__}.wait_for: not met in {limit}s")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))

    def changed(self) -> None:
        """Wake every :meth:`wait_for` (a fresh event for the next change)."""
        self._changed.set()
        self._changed = asyncio.Event()


def free_port() -> int:
    """A port on 127.0.0.1 that is free at this moment, for a listener whose port the config
    must name (a platform's own webhook server)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
