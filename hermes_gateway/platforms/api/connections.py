"""Connections before authentication: a cap, a deadline for each request head, quiet logs.

Anyone who can reach the port can open connections, and aiohttp neither limits how many nor
drops one whose request head never completes (a slowloris client sending a byte a second
holds its socket for an hour). A flood of idle connections used to exhaust the process's file
descriptors, and with them Telegram, SQLite and the model client. So the listening socket's
protocol factory is wrapped:

* at most ``max_connections`` (and never more than half the file-descriptor limit) are open;
  at the cap the oldest connection with no request in progress is dropped to make room, and
  if every one is busy with a request the newcomer is closed at once;
* a connection must complete a request head within ``header_timeout`` of opening (or of its
  previous response): otherwise it is dropped;
* every such event is logged through a :class:`LogThrottle`, a few lines a second with a count
  of what was left out, so a flood cannot rotate the logs away.

Bodies have their own deadline (``body_timeout``, in the server's ``read_body``). Accept errors
(EMFILE when the process ran out of descriptors anyway) are asyncio's: it stops accepting for
a second and tries again, so no busy loop.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.web_protocol import RequestHandler

__all__ = ["ConnectionGuard", "LogThrottle", "effective_cap"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def effective_cap(configured: int) -> int:
    """``configured``, but at most half the soft file-descriptor limit (the other half is for
    the database, the model client, the chat platforms and the logs), and at least 1."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - every POSIX system has it
        return max(1, configured)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return max(1, configured)
    return max(1, min(configured, soft // 2))


class LogThrottle:
    """At most ``burst`` lines at once and ``per_second`` after that; the rest is counted and
    the count is added to the next line that gets through."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        per_second: float = 2.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.rate = per_second
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()
        self.suppressed = 0
        self.emitted = 0

    def warning(self, message: str, *args: object) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            self.suppressed += 1
            return
        self.tokens -= 1
        self.emitted += 1
        if self.suppressed:
            message += " (%d similar events not logged)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self.logger.warning(message, *args)


class _Connection:
    """One accepted connection: aiohttp's handler inside, our deadline around it."""

    __slots__ = ("busy", "deadline", "inner", "opened", "transport")

    def __init__(self, transport: asyncio.Transport, inner: RequestHandler) -> None:
        self.transport = transport
        self.inner = inner
        self.busy = 0
        """Requests of this connection being handled now (heads complete)."""
        self.deadline: asyncio.TimerHandle | None = None
        self.opened = time.monotonic()


class _GuardedProtocol(asyncio.Protocol):
    """What the listening socket makes per connection: admission, then aiohttp's handler."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.conn: _Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.conn = self.guard.admit(transport)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.conn is not None:
            self.conn.inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self.guard.release(conn)
            conn.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.inner.resume_writing()


class ConnectionGuard:
    """Admits, times and counts the connections of one aiohttp server.

    ``server`` (aiohttp's low-level server, ``AppRunner.server``, which makes the handlers)
    is set once the runner is set up, before the first connection.

    Args:
        max_connections: Open connections at most (see :func:`effective_cap`).
        header_timeout: Seconds a connection may take to send a complete request head,
            counted from its opening or its previous response; 0 disables the deadline.
    """

    def __init__(
        self, *, max_connections: int, header_timeout: float, logger: logging.Logger = log
    ) -> None:
        self.server: Callable[[], RequestHandler] | None = None
        self.cap = effective_cap(max_connections)
        self.header_timeout = header_timeout
        self.open: dict[asyncio.Transport, _Connection] = {}
        """Open connections, oldest first (dicts keep insertion order)."""
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0
        self.throttle = LogThrottle(logger)

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory for ``loop.create_server``."""
        return _GuardedProtocol(self)

    # --- admission ------------------------------------------------------------------------

    def admit(self, transport: asyncio.Transport) -> _Connection | None:
        if len(self.open) >= self.cap and not self._evict_idle():
            self.refused += 1
            self.throttle.warning(
                "API server: %d connections open (the limit); refused a new one from %s",
                len(self.open),
                _peer(transport),
            )
            transport.abort()
            return None
        assert self.server is not None, "ConnectionGuard.server is set before serving"
        conn = _Connection(transport, self.server())
        self.open[transport] = conn
        conn.inner.connection_made(transport)
        self._arm(conn)
        return conn

    def _evict_idle(self) -> bool:
        """Drop the oldest connection with no request in progress; False if all are busy."""
        for conn in self.open.values():
            if conn.busy == 0:
                self.evicted += 1
                self.throttle.warning(
                    "API server: %d connections open (the limit); dropped an idle one from %s",
                    len(self.open),
                    _peer(conn.transport),
                )
                self._drop(conn)
                return True
        return False

    def release(self, conn: _Connection) -> None:
        """The connection is gone (closed by either side)."""
        if conn.deadline is not None:
            conn.deadline.cancel()
            conn.deadline = None
        self.open.pop(conn.transport, None)

    def _drop(self, conn: _Connection) -> None:
        self.release(conn)
        conn.transport.abort()  # connection_lost follows and tells aiohttp's handler

    # --- the request-head deadline --------------------------------------------------------

    def _arm(self, conn: _Connection) -> None:
        if self.header_timeout <= 0 or conn.busy:
            return
        if conn.deadline is not None:
            conn.deadline.cancel()
        loop = asyncio.get_running_loop()
        conn.deadline = loop.call_later(self.header_timeout, self._expire, conn)

    def _expire(self, conn: _Connection) -> None:
        conn.deadline = None
        if conn.busy or conn.transport not in self.open:
            return
        self.timed_out += 1
        self.throttle.warning(
            "API server: no complete request from %s within %gs; connection dropped",
            _peer(conn.transport),
            self.header_timeout,
        )
        self._drop(conn)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks a connection busy while one of its requests is handled (the head is in)."""
        conn = self.open.get(request.transport) if request.transport is not None else None
        if conn is None:
            return await handler(request)
        conn.busy += 1
        if conn.deadline is not None:
            conn.deadline.cancel()
            conn.deadline = None
        try:
            return await handler(request)
        finally:
            conn.busy -= 1
            if conn.transport in self.open:
                self._arm(conn)  # the next request head (keep-alive) has its own deadline

    def stats(self) -> dict[str, Any]:
        return {
            "open": len(self.open),
            "cap": self.cap,
            "refused": self.refused,
            "evicted": self.evicted,
            "timed_out": self.timed_out,
        }


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "?")
