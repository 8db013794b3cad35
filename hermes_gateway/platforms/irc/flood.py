"""Flood-safe sending: a token bucket of lines for one IRC connection.

IRC servers read a client's lines at a limited pace and disconnect one whose unread lines
pile up ("Excess Flood"); ngircd takes about three lines a second, the ratbox/solanum family
about five after a short burst. The limit is per connection, not per chat, so one bucket
paces every line the bot writes; lines wait their turn in order (``asyncio.Lock`` is fair).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``burst`` lines at once, then ``rate`` lines per second (``rate <= 0``: no limit).

    Args:
        burst: Lines that may go out back to back after a quiet time.
        rate: Lines per second refilled.
        clock: Monotonic clock (injectable for tests).
        sleep: Async sleep matching ``clock``.
    """

    def __init__(
        self,
        burst: int,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.capacity = float(max(1, burst))
        self.rate = rate
        self._clock, self._sleep = clock, sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self.waited = 0.0
        """Seconds lines spent waiting for a token (for the benchmark's report)."""

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self) -> None:
        """Wait until one line may be sent, and count it."""
        if self.rate <= 0:
            return
        async with self._lock:
            self._refill()
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                self.waited += wait
                await self._sleep(wait)
                self._refill()
            self._tokens -= 1.0
