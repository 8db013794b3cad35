"""The life of one long-lived platform connection: start gate, state reports, reconnect loop.

Every adapter that keeps a connection open (Discord's gateway, Slack's Socket Mode,
Mattermost's websocket, a Matrix sync loop, an IRC socket, an IMAP IDLE...) needs the same
things: ``start()`` returns once the first connection is up, raises for a fatal error such as
a refused token, or stops waiting after a while and reports "reconnecting"; each state change
is reported once; a connection that ends is tried again after the shared
:class:`~hermes_gateway.backoff.Backoff`, which a success resets. It lives here once, so a fix
reaches every platform.

An adapter hands :meth:`ConnectionLoop.start` a *session*: a coroutine that connects, calls
:meth:`ConnectionLoop.connected` once it is really usable, runs until the connection ends and
returns why it ended (or raises: :class:`FatalPlatformError` ends the loop for good, any other
exception is described and retried). The session closes its own client on the way out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hermes_gateway.backoff import Backoff
from hermes_gateway.platforms.base import FatalPlatformError

if TYPE_CHECKING:
    from hermes_gateway.platforms.base import PlatformAdapter

__all__ = ["ConnectionLoop", "Session"]

log = logging.getLogger(__name__)

Session = Callable[[], Awaitable[str]]
"""One connection from connect to its end; returns the reason it ended."""


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ConnectionLoop:
    """Start gate, de-duplicated state reports and the reconnect loop of one adapter."""

    def __init__(
        self,
        adapter: PlatformAdapter,
        label: str,
        backoff: Backoff,
        *,
        describe: Callable[[BaseException], str] = _describe,
    ) -> None:
        self._adapter = adapter
        self.label = label
        """The platform's name as users read it ("Discord"), for logs."""
        self.backoff = backoff
        self._describe = describe
        self._state: tuple[str, str] | None = None
        self._stopping = False
        self._first: asyncio.Future[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """True from :meth:`stop` until the next :meth:`start`."""
        return self._stopping

    @property
    def state(self) -> str | None:
        return None if self._state is None else self._state[0]

    async def start(self, session: Session, *, wait: float, waiting: str) -> None:
        """Run ``session`` in a watcher task; return once connected, failed or ``wait`` passed.

        After ``wait`` seconds without a connection the adapter is reported "reconnecting"
        with ``waiting`` as the detail and start returns: the gateway goes on while the
        platform keeps trying. A fatal error before then is raised from here.
        """
        self._stopping = False
        loop = asyncio.get_running_loop()
        self._first = first = loop.create_future()
        self._watcher = loop.create_task(self._run(session), name=f"{self.label.lower()}-watcher")
        try:
            await asyncio.wait_for(asyncio.shield(first), wait)
        except TimeoutError:
            self.set_state("reconnecting", waiting)

    async def stop(self, timeout: float = 5.0) -> None:
        """End the loop: no reconnect after this; the running session is cancelled."""
        self._stopping = True
        watcher = self._watcher
        if watcher is not None and not watcher.done():
            watcher.cancel()
            await asyncio.wait([watcher], timeout=timeout)
        first = self._first
        if first is not None and not first.done():
            first.cancel()

    def connected(self, detail: str) -> None:
        """The session is usable: report it, let ``start()`` return, reset the backoff."""
        self.backoff.reset()
        self.set_state("connected", detail)
        self._release_start()

    def set_state(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        """Report a state once (a retry countdown is always reported: it changes)."""
        if retry_in is None and self._state == (state, detail):
            return
        self._state = (state, detail)
        self._adapter.report(state, detail, retry_in)

    def fail(self, reason: str) -> None:
        """The platform cannot work until the user changes something."""
        log.error("%s cannot work: %s", self.label, reason)
        first = self._first
        if first is not None and not first.done():
            first.set_exception(FatalPlatformError(reason))  # start() raises; runner reports
            return
        self.set_state("failed", reason)

    def _release_start(self) -> None:
        first = self._first
        if first is not None and not first.done():
            first.set_result(None)

    async def _run(self, session: Session) -> None:
        while not self._stopping:
            try:
                reason = await session()
            except asyncio.CancelledError:
                raise
            except FatalPlatformError as exc:
                self.fail(str(exc))
                return
            except Exception as exc:
                reason = self._describe(exc)
                log.warning("%s connection lost: %s", self.label, reason, exc_info=exc)
            if self._stopping:
                return
            wait = self.backoff.next()
            self.set_state("reconnecting", reason, wait)
            self._release_start()
            await asyncio.sleep(wait)
