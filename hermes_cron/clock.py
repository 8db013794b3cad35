"""The scheduler's sense of time, injectable so tests can move it by days in microseconds.

The ticker, leases and run records all read :meth:`Clock.now` and wait with
:meth:`Clock.sleep_until`; production uses :class:`SystemClock`, tests :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "next_minute"]


class Clock(Protocol):
    """Aware UTC time, and a way to wait for a moment of it."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


def next_minute(now: datetime) -> datetime:
    """The next whole minute strictly after ``now`` (the ticker wakes on these)."""
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


class SystemClock:
    """The wall clock.

    ``sleep_until`` sleeps in slices of at most 30 s and re-reads the clock after each, so a
    suspended laptop or a clock step wakes the scheduler within 30 s of the target rather
    than a full monotonic interval later.
    """

    max_slice: float = 30.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        while True:
            remaining = (when - self.now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, self.max_slice))


class ManualClock:
    """A clock that only moves when a test says so; sleepers wake as it passes them."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._seq), future))
        await future

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (forwards only) and wake every sleeper whose time has come."""
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError("a ManualClock never goes backwards")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def advance(self, delta: timedelta | float) -> None:
        """Move forward by ``delta`` (a timedelta or seconds)."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self.set(self._now + delta)

    @property
    def sleepers(self) -> int:
        """How many waits are pending (tests use it to know the ticker went to sleep)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())
