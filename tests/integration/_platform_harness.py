"""What the platform harnesses share: the real gateway built from a config, started without
the local terminal, the platform's adapter and a recorder of the bus, stopped again however
the test ends (:func:`started_gateway`: the SMS, WhatsApp, Signal, Mattermost, Slack,
Discord, Matrix, IRC, Email and Home Assistant harnesses).

SMS, WhatsApp and Signal share more (:class:`PlatformHarness`): a harness names its platform
and adapter type; :func:`platform_gateway` yields it once the platform reported ``connected``
(or ``failed``: a test of bad credentials looks at :meth:`PlatformHarness.states`).
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


@dataclass
class Started(Generic[A]):
    """A gateway started by :func:`started_gateway`, with the platform's adapter."""

    gateway: Gateway
    runner: GatewayRunner
    adapter: A
    recorder: Recorder


@contextlib.asynccontextmanager
async def started_gateway(
    config: Config,
    platform: str,
    adapter_type: type[A],
    configure: Callable[[Config], None] | None = None,
) -> AsyncIterator[Started[A]]:
    """The whole gateway for ``config`` (after ``configure``), without the local terminal,
    a recorder on its bus; stopped (and the recorder closed) however the block ends."""
    if configure is not None:
        configure(config)
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    runner = await gateway.start(local=False)
    try:
        adapter = runner.adapters[platform]
        assert isinstance(adapter, adapter_type)
        yield Started(gateway, runner, adapter, recorder)
    finally:
        await gateway.stop()
        recorder.close()


@contextlib.asynccontextmanager
async def platform_gateway(
    harness: type[H],
    fake: AiohttpFake,
    config: Config,
    configure: Callable[[Config], None] | None = None,
) -> AsyncIterator[H]:
    """:func:`started_gateway` yielded as ``harness`` once the platform connected or failed."""
    async with started_gateway(config, harness.platform, harness.adapter_type, configure) as up:
        running = harness(fake, up.gateway, up.runner, up.adapter, up.recorder)
        await running.wait_state("connected", "failed")
        yield running
