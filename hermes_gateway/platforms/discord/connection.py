"""The Discord connection: the discord.py client, its redirection, and what is fatal.

discord.py resumes dropped gateway connections and reconnects by itself. It gives up in two
kinds of cases, told apart here: configuration that no retry can fix (a rejected token, a
privileged intent not enabled, invalid intents or shards) is *fatal*; anything else (Discord
unreachable at login, server errors) is retried by the adapter's watcher with a fresh client
and exponential backoff capped at :data:`RECONNECT_CAP`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, Protocol

import aiohttp
import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route
from yarl import URL

from hermes_gateway.backoff import Backoff
from hermes_gateway.config import DiscordConfig
from hermes_gateway.platforms.discord.transport import ALLOWED_MENTIONS

__all__ = [
    "FATAL_CLOSE_CODES",
    "MAX_RATELIMIT_WAIT",
    "RECONNECT_BASE",
    "RECONNECT_CAP",
    "ClientEvents",
    "EndpointRedirect",
    "HermesClient",
    "close_client",
    "describe_failure",
    "fatal_reason",
    "reconnect_backoff",
    "rest_base",
]

log = logging.getLogger(__name__)

RECONNECT_BASE = 1.0
RECONNECT_CAP = 300.0
"""Backoff after discord.py gives up: 1 s, 2 s, 4 s ... at most five minutes."""


def reconnect_backoff() -> Backoff:
    """The watcher's backoff after discord.py gives up (the project's shared one)."""
    return Backoff(RECONNECT_BASE, RECONNECT_CAP, jitter=0.2, upward=True)


MAX_RATELIMIT_WAIT = 30.0
"""Longer 429 waits come back to the rate gate as RetryAfter instead of blocking inside
discord.py, so the gate can pause the whole channel."""

FATAL_CLOSE_CODES = {
    4004: "Discord rejected the bot token",
    4010: "invalid shard",
    4011: "sharding required",
    4012: "invalid gateway API version",
    4013: "invalid intents",
    4014: "the Message Content intent is not enabled for this bot",
}


def rest_base(api_base: str) -> str:
    """``Route.BASE`` for DISCORD_API_BASE, which may or may not end in ``/api/v10``."""
    base = api_base.rstrip("/")
    if re.search(r"/api/v\d+$", base):
        return base
    return f"{base}/v10" if base.endswith("/api") else f"{base}/api/v10"


def fatal_reason(exc: BaseException) -> str | None:
    """Why ``exc`` cannot be fixed by retrying (None if a retry may help)."""
    if isinstance(exc, discord.LoginFailure):
        return "Discord rejected the bot token (401); check DISCORD_BOT_TOKEN"
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return (
            "the Message Content intent is not enabled for this bot; turn it on in the "
            "Discord Developer Portal (Bot > Privileged Gateway Intents)"
        )
    if isinstance(exc, discord.ConnectionClosed) and exc.code in FATAL_CLOSE_CODES:
        return f"{FATAL_CLOSE_CODES[exc.code]} (gateway close code {exc.code})"
    return None


def describe_failure(exc: BaseException) -> str:
    """A short reason for the Platforms pane when discord.py gave up."""
    if isinstance(exc, discord.ConnectionClosed):
        return f"gateway closed ({exc.code})"
    if isinstance(exc, discord.HTTPException):
        return f"Discord answered {exc.status}"
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return f"cannot reach Discord: {exc}" if str(exc) else "cannot reach Discord"
    return str(exc) or type(exc).__name__


class EndpointRedirect:
    """DISCORD_API_BASE / DISCORD_GATEWAY_URL applied to discord.py, and undone.

    Both are process-wide class attributes in discord.py (``Route.BASE`` is read when each
    request's route is built, ``DiscordWebSocket.DEFAULT_GATEWAY`` on every IDENTIFY), so
    they are set while the adapter runs and restored when it stops.
    """

    def __init__(self, api_base: str, gateway_url: str) -> None:
        self.api_base, self.gateway_url = api_base, gateway_url
        self._saved: tuple[str, URL] | None = None

    def apply(self) -> None:
        if not (self.api_base or self.gateway_url):
            return
        if self._saved is None:
            self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if self.api_base:
            Route.BASE = rest_base(self.api_base)
        if self.gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = URL(self.gateway_url)

    def restore(self) -> None:
        if self._saved is not None:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self._saved = None


class ClientEvents(Protocol):
    """What the client forwards (implemented by the adapter)."""

    client: discord.Client | None

    async def on_client_ready(self, client: discord.Client) -> None: ...
    def on_client_resumed(self, client: discord.Client) -> None: ...
    def on_client_disconnect(self, client: discord.Client) -> None: ...
    async def on_client_message(self, message: discord.Message) -> None: ...
    async def on_client_interaction(self, interaction: discord.Interaction) -> None: ...


class HermesClient(discord.Client):
    """A discord.py client that forwards the events the gateway uses.

    Messages and interactions of a client that has been replaced (after discord.py gave
    up) are dropped, so one message can never be handled by two clients.
    """

    def __init__(self, events: ClientEvents, cfg: DiscordConfig) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        intents.typing = False  # other people typing: not needed, and chatty
        super().__init__(
            intents=intents,
            guild_ready_timeout=cfg.guild_ready_timeout,
            allowed_mentions=ALLOWED_MENTIONS,
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
            chunk_guilds_at_startup=False,
            max_messages=None,
        )
        self._events = events

    async def on_ready(self) -> None:
        await self._events.on_client_ready(self)

    async def on_resumed(self) -> None:
        self._events.on_client_resumed(self)

    async def on_disconnect(self) -> None:
        self._events.on_client_disconnect(self)

    async def on_message(self, message: discord.Message) -> None:
        if self is self._events.client:
            await self._events.on_client_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if self is self._events.client:
            await self._events.on_client_interaction(interaction)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("Discord event handler %s failed", event_method)


async def close_client(client: discord.Client) -> None:
    """Close a client (websocket and HTTP session) without letting a failure escape."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            await client.close()
