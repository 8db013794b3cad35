"""What the webhook/REST platform harnesses share (SMS, WhatsApp, Signal): the real gateway
built from a config, started without the local terminal, the platform's adapter and a recorder
of the bus, stopped again however the test ends.

A harness names its platform and adapter type; :func:`platform_gateway` starts the gateway
and yields the harness once the platform reported ``connected`` (or ``failed``: a test of bad
credentials looks at :meth:`PlatformHarness.states`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_gateway.runner import GatewayRunner
from hermes_tui.assembly import build_gateway
from tests.fakes._aiohttp_fake import AiohttpFake
from tests.helpers import Recorder

F = TypeVar("F", bound=AiohttpFake)
A = TypeVar("A", bound=PlatformAdapter)
H = TypeVar("H", bound="PlatformHarness")  # type: ignore[type-arg]


@dataclass
class PlatformHarness(Generic[F, A]):
    """A running gateway with one platform enabled, against ``fake``."""

    platform: ClassVar[str]
    adapter_type: ClassVar[type[PlatformAdapter]]

    fake: F
    gateway: Gateway
    runner: GatewayRunner
    adapter: A
    recorder: Recorder

    def states(self) -> list[tuple[str, str]]:
        return [
            (e.state, e.detail)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == self.platform
        ]

    async def wait_state(self, *states: str, timeout: float = 5.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] in states, timeout
        )

    async def wait_listed(
        self, listed: Callable[[], list[str]], count: int, timeout: float = 5.0
    ) -> list[str]:
        """Wait until ``listed()`` (what the fake recorded the bot sending to someone) has
        ``count`` entries and every turn finished; then that list."""
        await self.fake.wait_for(lambda: len(listed()) >= count, timeout)
        await self.runner.wait_idle(timeout)
        return listed()


@contextlib.asynccontextmanager
async def platform_gateway(
    harness: type[H],
    fake: AiohttpFake,
    config: Config,
    configure: Callable[[Config], None] | None = None,
) -> AsyncIterator[H]:
    """The whole gateway for ``config`` (after ``configure``), yielded as ``harness``."""
    if configure is not None:
        configure(config)
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    runner = await gateway.start(local=False)
    try:
        adapter = runner.adapters[harness.platform]
        assert isinstance(adapter, harness.adapter_type)
        running = harness(fake, gateway, runner, adapter, recorder)
        await running.wait_state("connected", "failed")
        yield running
    finally:
        await gateway.stop()
        recorder.close()
