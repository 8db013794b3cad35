"""Loop-lag watchdog: notices when anything blocks the event loop.

A task sleeps a short interval and measures how late it wakes up. Lateness above the threshold
means something ran on the loop for that long without yielding: it is logged and published
as a ``LoopLag`` event, which the TUI shows in its status line.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hermes_gateway.events import EventBus, LoopLag

log = logging.getLogger(__name__)


class LoopWatchdog:
    def __init__(self, bus: EventBus, *, threshold: float = 0.1, interval: float = 0.05) -> None:
        self.bus = bus
        self.threshold = threshold
        self.interval = interval
        self.worst = 0.0
        self.stalls = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = time.perf_counter() - before - self.interval
            if lag > self.threshold:
                self.stalls += 1
                self.worst = max(self.worst, lag)
                log.warning("event loop blocked for %.0f ms", lag * 1000)
                self.bus.publish(LoopLag(lag=lag))
