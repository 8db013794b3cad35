"""A gateway with the Mattermost adapter on the fake Mattermost, and helpers to drive it.

:func:`mattermost_gateway` runs the real :class:`~hermes_gateway.gateway.Gateway`, built from
config exactly as in production (the registry finds the Mattermost plugin from MATTERMOST_URL
and MATTERMOST_TOKEN), against :class:`~tests.fakes.mattermost_server.FakeMattermost` and
the scripted model.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.mattermost.adapter import MattermostAdapter
from hermes_gateway.runner import GatewayRunner
from tests.conftest import make_config
from tests.fakes.mattermost_server import FakeMattermost
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder
from tests.integration._platform_harness import started_gateway


@dataclass
class World:
    """Two users, a channel, another channel and the DMs with the bot."""

    alice: str
    bob: str
    town: str
    other: str
    dm_alice: str
    dm_bob: str


def add_world(fake: FakeMattermost) -> World:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    town = fake.add_channel("town-square", [alice, bob])
    other = fake.add_channel("off-topic", [alice, bob])
    return World(alice, bob, town, other, fake.dm(alice), fake.dm(bob))


@dataclass
class Harness:
    fake: FakeMattermost
    world: World
    gateway: Gateway
    runner: GatewayRunner
    adapter: MattermostAdapter
    recorder: Recorder

    async def dm(self, text: str, *, user: str | None = None, **kw: Any) -> Any:
        user = user or self.world.alice
        return await self.fake.post_as(user, self.fake.dm(user), text, **kw)

    async def post(self, channel: str, text: str, *, user: str | None = None, **kw: Any) -> Any:
        return await self.fake.post_as(user or self.world.alice, channel, text, **kw)

    async def wait_answers(
        self, channel: str, count: int, *, root: str | None = None, timeout: float = 5.0
    ) -> list[str]:
        """Wait for ``count`` bot posts and for every turn to finish; what they show."""
        await self.fake.wait_for(lambda: len(self.fake.bot_posts(channel, root)) >= count, timeout)
        await self.runner.wait_idle(timeout)
        return self.fake.shown(channel, root)

    def states(self) -> list[tuple[str, str, float | None]]:
        return [
            (e.state, e.detail, e.retry_in)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "mattermost"
        ]

    async def wait_state(self, state: str, timeout: float = 5.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] == state, timeout
        )


def mattermost_config(home: Any, openai: FakeOpenAI, fake: FakeMattermost, **env: str) -> Config:
    """Config as a Hermes user writes it (env names), tuned for fast tests."""
    config = make_config(
        home, openai, **{"MATTERMOST_URL": fake.url, "MATTERMOST_TOKEN": fake.token, **env}
    )
    section = config.platforms.mattermost
    section.edit_interval = 0.1
    section.reconnect_initial = 0.05
    section.reconnect_cap = 0.2
    return config


@contextlib.asynccontextmanager
async def mattermost_gateway(
    home: Any,
    openai: FakeOpenAI,
    *,
    fake_options: dict[str, Any] | None = None,
    configure: Callable[[Config], None] | None = None,
    allowed: Callable[[World], str] = lambda w: w.alice,
    wait_connected: bool = True,
    **env: str,
) -> AsyncIterator[Harness]:
    """The whole gateway, Mattermost enabled by config, against a fresh fake."""
    async with FakeMattermost(**(fake_options or {})) as fake:
        world = add_world(fake)
        env.setdefault("MATTERMOST_ALLOWED_USERS", allowed(world))
        config = mattermost_config(home, openai, fake, **env)
        async with started_gateway(config, "mattermost", MattermostAdapter, configure) as up:
            harness = Harness(fake, world, up.gateway, up.runner, up.adapter, up.recorder)
            if wait_connected:
                await harness.wait_state("connected")
            yield harness
