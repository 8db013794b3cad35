"""A whole gateway with Slack enabled by config (Hermes Agent's env names) on the fake Slack.

The real :class:`~hermes_gateway.gateway.Gateway` is built from config exactly as in
production, so the registry imports the Slack adapter, which runs the real slack-bolt app
and slack_sdk Socket Mode client against :mod:`tests.fakes.slack_server` over 127.0.0.1.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.slack.adapter import SlackAdapter
from hermes_gateway.runner import GatewayRunner
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import BOT_USER, FakeSlack, PostedMessage
from tests.helpers import Recorder
from tests.integration._platform_harness import started_gateway

ALICE, BOB, EVE = "U0ALICE", "U0BOB", "U0EVE"
DM_ALICE, DM_EVE = "D0ALICE", "D0EVE"
CHANNEL, OTHER = "C0GENERAL", "C0RANDOM"
MENTION = f"<@{BOT_USER}>"


@dataclass
class Harness:
    fake: FakeSlack
    gateway: Gateway
    runner: GatewayRunner
    adapter: SlackAdapter
    recorder: Recorder
    openai: FakeOpenAI

    def answers(self, channel: str, thread: str | None = None) -> list[str]:
        return [m.text for m in self.fake.messages_in(channel, thread)]

    def messages(self, channel: str) -> list[PostedMessage]:
        return self.fake.messages_in(channel)

    async def wait_answers(
        self, channel: str, count: int, thread: str | None = None, timeout: float = 10.0
    ) -> list[str]:
        """Wait for ``count`` bot messages in ``channel`` and for every turn to finish."""
        await self.fake.wait_for(lambda: len(self.answers(channel, thread)) >= count, timeout)
        await self.runner.wait_idle(timeout)
        return self.answers(channel, thread)

    def states(self) -> list[tuple[str, str, float | None]]:
        return [
            (e.state, e.detail, e.retry_in)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "slack"
        ]

    async def wait_state(self, state: str, timeout: float = 10.0, after: int = 0) -> None:
        await self.recorder.wait_for(
            lambda: any(s[0] == state for s in self.states()[after:]), timeout
        )


def slack_config(home: Any, openai: FakeOpenAI, fake: FakeSlack, **env: str) -> Config:
    """Config as a Hermes user writes it (env names), tuned for fast tests."""
    base = {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_APP_TOKEN": fake.app_token,
        "SLACK_API_BASE": fake.api_base,
        "SLACK_ALLOWED_USERS": f"{ALICE},{BOB}",
    }
    config = make_config(home, openai, **{**base, **env})
    slack = config.platforms.slack
    slack.edit_interval = 0.05
    slack.rate_interval = 0.0
    slack.reconnect_initial = 0.05
    slack.updates_per_minute = 6000.0  # the Tier 3 budget has its own unit test
    return config


@contextlib.asynccontextmanager
async def slack_gateway(
    home: Any,
    openai: FakeOpenAI,
    *,
    fake: FakeSlack | None = None,
    configure: Callable[[Config], None] | None = None,
    wait_connected: bool = True,
    **env: str,
) -> AsyncIterator[Harness]:
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeSlack())
        config = slack_config(home, openai, fake, **env)
        async with started_gateway(config, "slack", SlackAdapter, configure) as up:
            harness = Harness(fake, up.gateway, up.runner, up.adapter, up.recorder, openai)
            if wait_connected:
                await harness.wait_state("connected")
            yield harness
