"""What the Discord tests share: the fake with slash-command interactions, and a gateway on it.

``FakeDiscord`` (tests/fakes) serves REST and the gateway but not interactions; slash
commands need three more wire pieces, added here by subclassing rather than by editing the
shared fake: INTERACTION_CREATE dispatches, ``POST /interactions/{id}/{token}/callback``
and the interaction webhook (``PATCH .../messages/@original``, ``POST /webhooks/...``).

:func:`discord_gateway` runs the real :class:`~hermes_gateway.gateway.Gateway` (built from
config exactly as in production, so ``remote_adapters`` imports the Discord adapter) against
the fake and the scripted model. The tests at the bottom prove the interaction extension is
faithful enough for discord.py itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import discord
from aiohttp import web

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.discord.adapter import DiscordAdapter
from hermes_gateway.runner import GatewayRunner
from tests.conftest import make_config
from tests.fakes.discord_server import (
    ChannelType,
    FakeDiscord,
    SentMessage,
    _Channel,
    _Route,
    patch_discord,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder
from tests.integration._platform_harness import started_gateway

ALICE, BOB = 4242, 4343
GUILD, CHANNEL, OTHER_CHANNEL = 9001, 9101, 9102
DM_ALICE, DM_BOB = 5001, 5002


@dataclass
class InteractionRecord:
    """One slash-command interaction: how it was answered and what it finally showed."""

    token: str
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    original: list[str] = field(default_factory=list)
    """Contents of the original response, in order (callback message, then edits)."""
    followups: list[str] = field(default_factory=list)

    @property
    def callback_types(self) -> list[int]:
        return [c.get("type", 0) for c in self.callbacks]

    @property
    def ephemeral(self) -> bool:
        return any((c.get("data") or {}).get("flags", 0) & 64 for c in self.callbacks)

    @property
    def shown(self) -> str:
        return self.original[-1] if self.original else ""


class InteractiveFakeDiscord(FakeDiscord):
    """FakeDiscord plus application-command interactions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.interactions: dict[str, InteractionRecord] = {}
        super().__init__(*args, **kwargs)

    def _build_routes(self) -> list[_Route]:
        routes = super()._build_routes()
        extra = [
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._interaction_callback),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._edit_original),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
        ]
        return routes + [_Route(m, re.compile(p), h, False) for m, p, h in extra]

    async def inject_interaction(
        self,
        name: str,
        args: str | None = None,
        *,
        user_id: int,
        channel_id: int,
        guild_id: int | None = None,
    ) -> InteractionRecord:
        """A user runs ``/name args`` (DM when ``guild_id`` is None)."""
        user = self._users[user_id]
        channel = self._channels.get(channel_id)
        if channel is None and guild_id is None:
            channel = _Channel(channel_id, ChannelType.DM, recipient_id=user_id)
            self._channels[channel_id] = channel
        assert channel is not None, f"unknown channel {channel_id}"
        token = f"itok-{secrets.token_hex(8)}"
        data: dict[str, Any] = {"id": str(self._ids.next()), "name": name, "type": 1}
        if args is not None:
            data["options"] = [{"name": "args", "type": 3, "value": args}]
        payload: dict[str, Any] = {
            "id": str(self._ids.next()),
            "application_id": str(self.app_id),
            "type": 2,
            "data": data,
            "channel_id": str(channel.id),
            "channel": self._channel_payload(channel),
            "token": token,
            "version": 1,
            "app_permissions": "0",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 0 if guild_id is not None else 1,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild_id is not None:
            guild = self._guilds[guild_id]
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["member"] = self._member_payload(user, guild)
        else:
            payload["user"] = user.payload()
        record = self.interactions[token] = InteractionRecord(token)
        await self._dispatch_all("INTERACTION_CREATE", payload)
        return record

    def _record(self, match: re.Match[str]) -> InteractionRecord | None:
        return self.interactions.get(match[2])

    def _bot_message(self, content: str) -> dict[str, Any]:
        return {
            "id": str(self._ids.next()),
            "channel_id": "0",
            "author": self._bot.payload(),
            "content": content,
            "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 20,
            "flags": 0,
        }

    async def _interaction_callback(
        self, request: web.Request, match: re.Match[str]
    ) -> web.Response:
        record = self._record(match)
        if record is None:
            return self._error(404, 10062, "Unknown interaction")
        if record.callbacks:
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        body = json.loads(await request.read() or b"{}")
        record.callbacks.append(copy.deepcopy(body))
        content = (body.get("data") or {}).get("content")
        if content is not None:
            record.original.append(content)
        self._bump()
        return self._json(
            {
                "interaction": {
                    "id": match[1],
                    "type": 2,
                    "response_message_loading": body.get("type") == 5,
                    "response_message_ephemeral": bool(
                        (body.get("data") or {}).get("flags", 0) & 64
                    ),
                },
                "resource": {"type": body.get("type", 4)},
            }
        )

    async def _edit_original(self, request: web.Request, match: re.Match[str]) -> web.Response:
        record = self._record(match)
        if record is None or not record.callbacks:
            return self._error(404, 10015, "Unknown Webhook")
        payload, _files = await self._read_message_body(request)
        if len(payload.get("content") or "") > 2000:
            return self._invalid_form({"content": self._field_error("BASE_TYPE_MAX_LENGTH", "")})
        record.original.append(payload.get("content") or "")
        self._bump()
        return self._json(self._bot_message(record.original[-1]))

    async def _followup(self, request: web.Request, match: re.Match[str]) -> web.Response:
        record = self._record(match)
        if record is None or not record.callbacks:
            return self._error(404, 10015, "Unknown Webhook")
        payload, _files = await self._read_message_body(request)
        record.followups.append(payload.get("content") or "")
        self._bump()
        return self._json(self._bot_message(record.followups[-1]))


@dataclass
class Harness:
    """A running gateway with the Discord adapter on the fake, and helpers to drive it."""

    fake: InteractiveFakeDiscord
    gateway: Gateway
    runner: GatewayRunner
    adapter: DiscordAdapter
    recorder: Recorder
    openai: FakeOpenAI

    async def dm(self, text: str, *, user: int = ALICE, **kwargs: Any) -> dict[str, Any]:
        channel = DM_ALICE if user == ALICE else DM_BOB
        return await self.fake.inject_message(channel, text, author_id=user, **kwargs)

    async def post(
        self,
        channel: int,
        text: str,
        *,
        user: int = ALICE,
        mention: bool = False,
        thread_of: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        return await self.fake.inject_message(
            channel,
            text,
            author_id=user,
            guild_id=GUILD,
            mentions_bot=mention,
            thread_parent_id=thread_of,
            **kwargs,
        )

    def answers(self, channel: int) -> list[str]:
        """What the bot's messages in ``channel`` show now, in order."""
        return [m.current_content for m in self.fake.messages_in(channel) if not m.deleted]

    def messages(self, channel: int) -> list[SentMessage]:
        return self.fake.messages_in(channel)

    async def wait_answers(self, channel: int, count: int, timeout: float = 5.0) -> list[str]:
        """Wait for ``count`` bot messages in ``channel`` and for every turn to finish."""
        await self.fake.wait_for(lambda: len(self.answers(channel)) >= count, timeout)
        await self.runner.wait_idle(timeout)
        return self.answers(channel)

    def states(self) -> list[tuple[str, str, float | None]]:
        return [
            (e.state, e.detail, e.retry_in)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "discord"
        ]

    async def wait_state(self, state: str, timeout: float = 5.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] == state, timeout
        )


def add_world(fake: FakeDiscord) -> None:
    fake.add_user(ALICE, "alice")
    fake.add_user(BOB, "bob")
    fake.add_guild(
        GUILD,
        "Hermes Lab",
        [CHANNEL, OTHER_CHANNEL],
        member_ids=[ALICE, BOB],
        channel_names={CHANNEL: "general", OTHER_CHANNEL: "random"},
    )


def discord_config(home: Any, openai: FakeOpenAI, fake: FakeDiscord, **env: str) -> Config:
    """Config as a user would write it (env names), tuned for fast tests."""
    base = {
        "DISCORD_BOT_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.rest_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_ALLOWED_USERS": str(ALICE),
    }
    config = make_config(home, openai, **{**base, **env})
    discord_cfg = config.platforms.discord
    discord_cfg.guild_ready_timeout = 0.05
    discord_cfg.edit_interval = 0.1
    # Answers stay where they were asked; auto-thread (Hermes Agent's default, on) has its own
    # tests that turn it on.
    discord_cfg.auto_thread = False
    return config


@contextlib.asynccontextmanager
async def discord_gateway(
    home: Any,
    openai: FakeOpenAI,
    *,
    fake_options: dict[str, Any] | None = None,
    configure: Callable[[Config], None] | None = None,
    wait_connected: bool = True,
    **env: str,
) -> AsyncIterator[Harness]:
    """The whole gateway, Discord enabled by config, against a fresh fake."""
    async with InteractiveFakeDiscord(**(fake_options or {})) as fake:
        add_world(fake)
        # patch_discord restores discord.py's process-wide endpoints whatever happens.
        with patch_discord(fake):
            config = discord_config(home, openai, fake, **env)
            async with started_gateway(config, "discord", DiscordAdapter, configure) as up:
                harness = Harness(fake, up.gateway, up.runner, up.adapter, up.recorder, openai)
                if wait_connected:
                    await harness.wait_state("connected")
                yield harness


# --- the interaction extension itself -------------------------------------------------


class _Recording(discord.Client):
    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.got: list[discord.Interaction] = []

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.got.append(interaction)
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content="first")
        await interaction.followup.send("second")


async def test_interaction_extension_speaks_discord_py() -> None:
    async with InteractiveFakeDiscord() as fake:
        add_world(fake)
        with patch_discord(fake):
            client = _Recording()
            task = asyncio.create_task(client.start(fake.token))
            try:
                await fake.wait_for(lambda: fake.live_connections == 1)
                record = await fake.inject_interaction(
                    "title", "hello", user_id=ALICE, channel_id=CHANNEL, guild_id=GUILD
                )
                await fake.wait_for(lambda: record.followups == ["second"])
                [interaction] = client.got
                assert interaction.data is not None and interaction.data["name"] == "title"
                assert isinstance(interaction.user, discord.Member)
                assert interaction.channel is not None and interaction.channel.id == CHANNEL
                assert record.callback_types == [5] and record.original == ["first"]
            finally:
                await client.close()
                await task
