"""Small test utilities shared by several test files."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from hermes_gateway.events import EventBus, GatewayEvent

E = TypeVar("E", bound=GatewayEvent)


class Recorder:
    """Collects every bus event, for assertions."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[GatewayEvent] = []
        self._remove = bus.add_listener(self.events.append)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"condition not met; events: {self.events[-10:]}")
            await asyncio.sleep(0.01)

    async def event(
        self,
        kind: type[E],
        where: Callable[[E], bool] = lambda _: True,
        *,
        since: int = 0,
        timeout: float = 15.0,
    ) -> E:
        """The first ``kind`` event matching ``where`` published at or after index ``since``.

        Why: "nothing happened" cannot be observed directly. The runner publishes why it
        ignored a message (``MessageDropped``, ``AccessDenied``); once that event is here the
        decision is made, so asserting that nothing else happened no longer races a sleep.
        Pass ``since=len(rec.events)`` (taken before acting) to skip older matches.
        """

        def found() -> list[E]:
            return [e for e in self.events[since:] if isinstance(e, kind) and where(e)]

        await self.wait_for(lambda: bool(found()), timeout)
        return found()[0]

    def close(self) -> None:
        self._remove()
