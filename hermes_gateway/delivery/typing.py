"""Keep a chat's "typing..." indicator alive while an answer is being written.

Platforms show the indicator for a few seconds per request (Telegram about 5 s, Discord 10 s),
and a turn with tools can take minutes, so it is refreshed until the answer is final. The
refresher also ends after ``max_seconds`` and when ``cancel()`` is called (the adapter stops),
so a turn that never reaches ``finish`` (the agent raised) cannot leave it running. Where a
platform keeps showing the indicator until its own timeout (Matrix), ``off`` withdraws it once
the answer is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from hermes_gateway.delivery.errors import DeliveryError
from hermes_gateway.platforms.base import TurnDelivery

__all__ = ["TYPING_MAX", "TypingTurn"]

log = logging.getLogger(__name__)

TYPING_MAX = 900.0
"""Stop refreshing after this long even if the turn never finished (a crashed turn)."""


class TypingTurn:
    """A turn's delivery plus a typing indicator refreshed every ``every`` seconds.

    The runner sends the first typing request itself; this only refreshes it.
    """

    def __init__(
        self,
        inner: TurnDelivery,
        typing: Callable[[], Awaitable[None]],
        every: float,
        *,
        max_seconds: float = TYPING_MAX,
        name: str = "typing",
        off: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.inner = inner
        self._off = off
        self._typing = asyncio.get_running_loop().create_task(
            self._keep_typing(typing, every, max_seconds), name=name
        )

    @staticmethod
    async def _keep_typing(
        typing: Callable[[], Awaitable[None]], every: float, max_seconds: float
    ) -> None:
        for _ in range(int(max_seconds // every)):
            await asyncio.sleep(every)
            try:
                await typing()
            except Exception:
                log.debug("typing indicator failed", exc_info=True)

    def cancel(self) -> None:
        """Stop refreshing (the adapter is stopping)."""
        self._typing.cancel()

    def on_delta(self, text: str) -> None:
        self.inner.on_delta(text)

    def on_tool_started(self, name: str, preview: str) -> None:
        self.inner.on_tool_started(name, preview)

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        self.inner.on_tool_finished(name, ok, duration, summary)

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        self._typing.cancel()
        try:
            await self.inner.finish(text, interrupted=interrupted, error=error)
        finally:
            if self._off is not None:
                with contextlib.suppress(DeliveryError):
                    await self._off()
