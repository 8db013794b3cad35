"""Discord as a gateway platform: discord.py running inside the gateway's own event loop.

The adapter does what every adapter does and nothing more: it keeps a connection, turns
Discord messages and slash commands into :class:`~hermes_gateway.models.MessageEvent`, and
delivers answers. Its parts live next to it:

* :mod:`.discord_inbound`: which messages are for the bot, session sources, text cleanup;
* :mod:`.discord_transport`: send / edit / upload / typing over discord.py for the shared
  streaming code in :mod:`hermes_gateway.delivery`;
* :mod:`.discord_commands`: the command registry as application commands and back;
* :mod:`.discord_connection`: the discord.py client, endpoint redirection, what is fatal.

Connection. ``client.start(token)`` runs in a task of the running loop (never
``client.run``, which would want a loop of its own). discord.py resumes dropped gateway
connections and reconnects by itself; the watcher here handles what it gives up on: it
builds a fresh client and retries with exponential backoff (capped at 300 s), reporting
"reconnecting" with the delay. A rejected token or a missing privileged intent cannot be
fixed by retrying, so those are fatal and reported once, clearly. ``DISCORD_API_BASE`` and
``DISCORD_GATEWAY_URL`` redirect discord.py for proxies and tests while the adapter runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from pathlib import Path
from typing import Any

import aiohttp
import discord

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.commands.registry import CommandRegistry
from hermes_gateway.config import Config
from hermes_gateway.delivery import DISCORD_LIMIT, RateGate, split_message
from hermes_gateway.delivery.answer_turn import AnswerTurns
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, MessageEvent, SessionSource
from hermes_gateway.platforms.base import FatalPlatformError, PlatformAdapter, TurnDelivery
from hermes_gateway.platforms.chat_locks import ChatLocks
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.discord.commands import (
    PENDING_REPLY,
    InteractionReply,
    answer_interaction,
    command_payload,
    interaction_command_text,
)
from hermes_gateway.platforms.discord.connection import (
    EndpointRedirect,
    HermesClient,
    close_client,
    describe_failure,
    fatal_reason,
    reconnect_backoff,
)
from hermes_gateway.platforms.discord.inbound import DiscordInbound, roles_of, source_for
from hermes_gateway.platforms.discord.transport import (
    REQUEST_TIMEOUT,
    TYPING_REFRESH,
    DiscordTransport,
)
from hermes_gateway.tasks import TaskSet

__all__ = ["PER_CHANNEL_INTERVAL", "DiscordAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 30.0
"""How long start() waits for the first READY before returning anyway (still connecting)."""
PER_CHANNEL_INTERVAL = 0.05
"""Minimum spacing of writes in one channel. The real limit (5 writes per 5 s per channel)
is enforced by discord.py from Discord's bucket headers, pre-emptively; the gate keeps one
channel's streamed edits, progress lines and answers in order, coalesces queued edits while
a bucket is exhausted, and keeps them from leaving in the same instant."""
MAX_INBOUND_BYTES = 25 * 1024 * 1024
"""Attachments larger than this are not downloaded (a chat bot has no use for more)."""

_NOT_ALLOWED = "You are not allowed to use this bot."


class DiscordAdapter(PlatformAdapter):
    """Discord DMs, channels and threads.

    Args:
        config: The gateway configuration (``config.platforms.discord`` is used).
        policy: Who may talk; consulted here only to follow threads, save attachments and
            answer slash commands (the runner makes the real decision).
        commands: The registry to publish as slash commands; by default the runner's.
    """

    name = "discord"

    def __init__(
        self, config: Config, policy: AccessPolicy, *, commands: CommandRegistry | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.cfg = config.platforms.discord
        self.policy = policy
        self._commands = commands
        self.client: discord.Client | None = None
        self.transport = DiscordTransport(lambda: self.client)
        self.gate = RateGate(PER_CHANNEL_INTERVAL)
        self.inbound = DiscordInbound(self.cfg, policy, self._save_attachment)
        self.synced_commands: list[dict[str, Any]] | None = None
        """The last application-command payload Discord accepted."""
        self.link = ConnectionLoop(self, "Discord", reconnect_backoff(), describe=describe_failure)
        self._ready_seen = False
        self._synced = False
        self.answers = AnswerTurns(
            self.name,
            config.paths.home,
            upload=self._upload,
            typing=self.transport.typing,
            typing_every=TYPING_REFRESH,
            pacing=self.cfg,
            display=config.display,
        )
        self._chat_locks = ChatLocks()
        self._tasks = TaskSet("discord")
        self._endpoints = EndpointRedirect(self.cfg.api_base, self.cfg.gateway_url)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.cfg.token:
            raise FatalPlatformError("DISCORD_BOT_TOKEN is not set")
        self._synced = False
        self._endpoints.apply()
        if self.gate.closed:
            self.gate = RateGate(PER_CHANNEL_INTERVAL)
        await self.link.start(
            self._session, wait=START_WAIT, waiting="waiting for the Discord gateway"
        )

    async def stop(self) -> None:
        self.answers.cancel()
        await self.link.stop()  # the session closes its client on the way out
        client = self.client
        if client is not None:
            await close_client(client)
        await self._tasks.cancel_all(timeout=5)
        await self.gate.aclose()
        self._endpoints.restore()
        self.client = None
        self.link.set_state("stopped")

    async def _session(self) -> str:
        """One discord.py client from start until it gives up; the link reconnects."""
        client = HermesClient(self, self.cfg)
        self.client = client
        self._ready_seen = False
        try:
            await client.start(self.cfg.token)
        except Exception as exc:
            fatal = fatal_reason(exc)
            if fatal is not None:
                raise FatalPlatformError(fatal) from exc
            raise
        finally:
            await close_client(client)
        return "the Discord connection ended"

    # --- gateway events -----------------------------------------------------------------

    async def on_client_ready(self, client: discord.Client) -> None:
        if client is not self.client or client.user is None:
            return
        self._ready_seen = True
        self.inbound.bot_id = client.user.id
        servers = len(client.guilds)
        self.link.connected(f"as {client.user.name} in {servers} server(s)")
        if self.cfg.sync_commands and not self._synced:
            self._synced = True
            self._spawn(self._sync_commands(client))

    def on_client_resumed(self, client: discord.Client) -> None:
        if client is self.client and client.user is not None:
            self.link.set_state(
                "connected", f"as {client.user.name} in {len(client.guilds)} server(s)"
            )

    def on_client_disconnect(self, client: discord.Client) -> None:
        if client is self.client and not self.link.stopping and self._ready_seen:
            self.link.set_state("reconnecting", "gateway connection lost; resuming")

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro, name="discord-message")

    def _registry(self) -> CommandRegistry | None:
        if self._commands is not None:
            return self._commands
        return self.host.commands if self.bound else None

    async def _sync_commands(self, client: discord.Client) -> None:
        registry = self._registry()
        if registry is None or client.application_id is None:
            return
        payload = command_payload(registry.specs(self.name))
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await client.http.bulk_upsert_global_commands(client.application_id, payload)
        except Exception as exc:  # slash commands are a convenience: never fatal
            log.warning("could not publish Discord slash commands: %s", exc)
            return
        self.synced_commands = payload
        log.info("published %d Discord slash commands", len(payload))

    # --- inbound ------------------------------------------------------------------------

    async def on_client_message(self, message: discord.Message) -> None:
        async with self._chat_locks.of(str(message.channel.id)):
            event = await self.inbound.normalize(message)
            if event is None:
                return
            if (
                self.cfg.auto_thread
                and event.mentioned
                and event.source.chat_type == "channel"
                and not event.is_command
                and not self.inbound.free_response(message.channel)  # Hermes: answer in place
            ):
                event = await self._open_thread(message, event)
            await self.dispatch(event)

    async def _open_thread(self, message: discord.Message, event: MessageEvent) -> MessageEvent:
        """Start a thread from the user's message and move the conversation there."""
        first_line = event.text.strip().splitlines()[0] if event.text.strip() else ""
        name = (first_line[:80].strip() or "Hermes").replace("\n", " ")
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                thread = await message.create_thread(name=name)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not open a thread, answering in the channel: %s", exc)
            return event
        self.inbound.follow(thread.id)
        source = source_for(thread, message.author) or event.source
        return dataclasses.replace(event, source=source)

    async def _save_attachment(self, attachment: discord.Attachment) -> MediaRef | None:
        """Download a user's attachment into HERMES_HOME/media (shared with Telegram)."""
        if attachment.size > MAX_INBOUND_BYTES:
            log.info("attachment %s is too large (%d bytes)", attachment.filename, attachment.size)
            return None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                data = await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not download attachment %s: %s", attachment.filename, exc)
            return None
        return await save_media(
            self.config.paths.media_dir,
            data,
            platform=self.name,
            unique_id=str(attachment.id),
            file_name=attachment.filename,
            mime_type=attachment.content_type,
        )

    async def on_client_interaction(self, interaction: discord.Interaction) -> None:
        """A slash command: acknowledged at once, then run through the runner like text.

        A sender who may not talk gets a private answer instead: in a DM whatever the
        access policy's deny hook says (a pairing code, where configured), else a refusal.
        """
        if interaction.type is not discord.InteractionType.application_command:
            return
        channel = interaction.channel
        source = source_for(channel, interaction.user) if channel is not None else None
        roles = roles_of(interaction.user)
        try:
            if source is None:
                await interaction.response.send_message(
                    "Hermes cannot answer here.", ephemeral=True
                )
                return
            allowed = await self.policy.is_allowed(source, roles)
            await interaction.response.defer(thinking=True, ephemeral=not allowed)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("could not answer a Discord interaction: %s", exc)
            return
        text = interaction_command_text(interaction.data or {})
        event = MessageEvent(text=text, source=source, message_id=str(interaction.id), roles=roles)
        reply = InteractionReply(interaction, self.target(source))
        token = PENDING_REPLY.set(reply)
        try:
            if allowed:
                await self.dispatch(event)
            else:
                await self.policy.authorize(event)  # logs (hashed id) and runs the deny hook
        finally:
            PENDING_REPLY.reset(token)
        if not reply.used:
            await answer_interaction(reply, ["Done." if allowed else _NOT_ALLOWED])

    # --- delivery -----------------------------------------------------------------------

    @staticmethod
    def target(source: SessionSource) -> str:
        """The Discord channel to write to: the thread itself for a thread session."""
        return source.thread_id or source.chat_id

    async def send(self, source: SessionSource, text: str) -> None:
        target = self.target(source)
        chunks = split_message(text, DISCORD_LIMIT)
        reply = PENDING_REPLY.get()
        if reply is not None and not reply.used and reply.target == target:
            await answer_interaction(reply, chunks)
            return
        transport = self.transport
        for chunk in chunks:
            await self.gate.run(target, functools.partial(transport.send_text, target, chunk))

    async def send_file(self, source: SessionSource, path: str | Path, caption: str = "") -> None:
        """Upload a file into the chat (cron results, files the agent hands over)."""
        await self._upload(self.target(source), Path(path), caption)

    async def _upload(self, chat: str, path: Path, caption: str = "") -> None:
        transport = self.transport
        await self.gate.run(chat, lambda: transport.send_file(chat, path, caption))

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        return self.answers.streamed(self.transport, self.gate, source, self.target(source))

    async def send_typing(self, source: SessionSource) -> None:
        await self.transport.typing(self.target(source))
