"""A gateway with the Signal adapter against the fake signal-cli-rest-api, and helpers.

:func:`signal_gateway` runs the real gateway built from config as a Hermes user writes it
(SIGNAL_HTTP_URL, SIGNAL_ACCOUNT, SIGNAL_ALLOWED_USERS, SIGNAL_GROUP_ALLOWED_USERS) with the
scripted model and :class:`~tests.fakes.signal_server.FakeSignal`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.signal.adapter import SignalAdapter
from hermes_gateway.runner import GatewayRunner
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.signal_server import FakeSignal
from tests.helpers import Recorder

ALICE = "+15551230001"
BOB = "+15551230002"
MALLORY = "+15559990000"


@dataclass
class Harness:
    fake: FakeSignal
    gateway: Gateway
    runner: GatewayRunner
    adapter: SignalAdapter
    recorder: Recorder

    async def wait_texts(self, recipient: str, count: int, timeout: float = 5.0) -> list[str]:
        await self.fake.wait_for(lambda: len(self.fake.texts(recipient)) >= count, timeout)
        await self.runner.wait_idle(timeout)
        return self.fake.texts(recipient)

    def states(self) -> list[tuple[str, str]]:
        return [
            (e.state, e.detail)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "signal"
        ]

    async def wait_state(self, *states: str, timeout: float = 5.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] in states, timeout
        )


@contextlib.asynccontextmanager
async def signal_gateway(
    home: Any,
    openai: FakeOpenAI,
    *,
    fake: FakeSignal | None = None,
    configure: Callable[[Config], None] | None = None,
    **env: str,
) -> AsyncIterator[Harness]:
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeSignal())
        fake.add_contact(ALICE, "Alice")
        fake.add_contact(BOB, "Bob")
        env = {
            "SIGNAL_HTTP_URL": fake.url,
            "SIGNAL_ACCOUNT": fake.account,
            "SIGNAL_ALLOWED_USERS": ALICE,
            **env,
        }
        config = make_config(home, openai, **env)
        section = config.platforms.signal
        section.rate_interval = 0.0
        section.backoff_initial = 0.05
        section.reconnect_initial = 0.05
        section.reconnect_cap = 0.2
        if configure is not None:
            configure(config)
        gateway = build_gateway(config)
        recorder = Recorder(gateway.bus)
        runner = await gateway.start(local=False)
        try:
            adapter = runner.adapters["signal"]
            assert isinstance(adapter, SignalAdapter)
            harness = Harness(fake, gateway, runner, adapter, recorder)
            await harness.wait_state("connected", "failed")
            yield harness
        finally:
            await gateway.stop()
            recorder.close()
