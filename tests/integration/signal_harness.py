"""A gateway with the Signal adapter against the fake signal-cli-rest-api, and helpers.

:func:`signal_gateway` runs the real gateway built from config as a Hermes user writes it
(SIGNAL_HTTP_URL, SIGNAL_ACCOUNT, SIGNAL_ALLOWED_USERS, SIGNAL_GROUP_ALLOWED_USERS) with the
scripted model and :class:`~tests.fakes.signal_server.FakeSignal`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from hermes_gateway.config import Config
from hermes_gateway.platforms.signal.adapter import SignalAdapter
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.signal_server import FakeSignal
from tests.integration._platform_harness import PlatformHarness, platform_gateway

ALICE = "+15551230001"
BOB = "+15551230002"
MALLORY = "+15559990000"


class Harness(PlatformHarness[FakeSignal, SignalAdapter]):
    platform = "signal"
    adapter_type = SignalAdapter

    async def wait_texts(self, recipient: str, count: int, timeout: float = 5.0) -> list[str]:
        return await self.wait_listed(lambda: self.fake.texts(recipient), count, timeout)


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
        async with platform_gateway(Harness, fake, config, configure) as harness:
            yield harness
