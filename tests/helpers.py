"""Small test utilities shared by several test files."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hermes_gateway.events import EventBus, GatewayEvent


class Recorder:
    """Collects every bus event, for assertions."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[GatewayEvent] = []
        self._remove = bus.add_listener(self.events.append)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"condition not met; events: {self.events[-10:]}")
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self._remove()
