"""A gateway with the Home Assistant adapter on the fake HA websocket API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.homeassistant.adapter import HomeAssistantAdapter
from hermes_gateway.runner import GatewayRunner
from tests.conftest import make_config
from tests.fakes.homeassistant_server import FakeHomeAssistant
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder
from tests.integration._platform_harness import started_gateway

ALICE = "0b4e5c2d9a8f4f6e8d7c6b5a4f3e2d1c"
"""An HA user id (HA's are 32 hex digits)."""
MALLORY = "f00dfeedf00dfeedf00dfeedf00dfeed"
EVENT = "hermes_conversation"


@dataclass
class Harness:
    fake: FakeHomeAssistant
    gateway: Gateway
    runner: GatewayRunner
    adapter: HomeAssistantAdapter
    recorder: Recorder

    async def say(self, text: str, *, user: str | None = ALICE, **data: Any) -> dict[str, Any]:
        return await self.fake.fire(EVENT, {"text": text, **data}, user_id=user)

    def notified(self, service: str = "notify") -> list[str]:
        return [
            c.data["message"]
            for c in self.fake.service_calls
            if c.domain == "notify" and c.service == service
        ]

    async def wait_notified(
        self, count: int, service: str = "notify", timeout: float = 10.0
    ) -> list[str]:
        await self.fake.wait_for(lambda: len(self.notified(service)) >= count, timeout)
        await self.runner.wait_idle(timeout)
        return self.notified(service)

    def states(self) -> list[tuple[str, str, float | None]]:
        return [
            (e.state, e.detail, e.retry_in)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "homeassistant"
        ]

    async def wait_state(self, state: str, timeout: float = 10.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] == state, timeout
        )


@contextlib.asynccontextmanager
async def homeassistant_gateway(
    home: Any,
    openai: FakeOpenAI,
    *,
    fake: FakeHomeAssistant | None = None,
    configure: Callable[[Config], None] | None = None,
    wait_connected: bool = True,
    **env: str,
) -> AsyncIterator[Harness]:
    """The whole gateway, Home Assistant enabled by HASS_* variables, on a fake HA."""
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeHomeAssistant())
        values = {"HASS_URL": fake.url, "HASS_TOKEN": fake.token, "HASS_ALLOWED_USERS": ALICE}
        config = make_config(home, openai, **{**values, **env})
        section = config.platforms.homeassistant
        section.reconnect_initial = 0.05
        section.reconnect_cap = 0.3
        async with started_gateway(config, "homeassistant", HomeAssistantAdapter, configure) as up:
            harness = Harness(fake, up.gateway, up.runner, up.adapter, up.recorder)
            if wait_connected:
                await harness.wait_state("connected")
            yield harness
