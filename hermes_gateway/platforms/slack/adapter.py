"""Slack as a gateway platform: slack-bolt's async app over a Socket Mode connection.

Socket Mode needs no public URL: the app token (``SLACK_APP_TOKEN``, ``xapp-``) asks
``apps.connections.open`` for a websocket URL and Slack pushes events and slash commands
through it, each in an envelope the client acknowledges. The bot token (``SLACK_BOT_TOKEN``,
``xoxb-``) makes the Web API calls. ``SLACK_API_BASE`` redirects the Web API (tests, proxies).

Parts next to this module: :mod:`.inbound` (what is for the bot, sessions, dedupe),
:mod:`.transport` (post / update / upload, errors for the shared delivery code),
:mod:`.mrkdwn` (Markdown to Slack's flavour), :mod:`.commands` (slash commands).

Durability: Bolt runs with ``process_before_response`` so an event is acknowledged only
after the runner stored it; if storing fails, no acknowledgement goes out and Slack delivers
it again. Slash commands are acknowledged at once (Slack wants an answer within 3 s) and
are not stored (they are commands, like Telegram's).

Connection. slack_sdk's own reconnect loop is turned off: the watcher here connects, waits
until the socket closes, then backs off with the shared :class:`~hermes_gateway.backoff.Backoff`
and reports each state to the host (the Platforms pane). A token Slack refuses
(``invalid_auth`` ...) cannot be fixed by retrying: one clear failure naming the variable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from pathlib import Path
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.commands.registry import CommandRegistry
from hermes_gateway.config import Config
from hermes_gateway.delivery import RateGate, split_message
from hermes_gateway.delivery.answer_turn import AnswerTurns
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, MessageEvent, SessionSource
from hermes_gateway.platforms.base import (
    FatalPlatformError,
    IntakeError,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.http_read import TooLarge, read_limited
from hermes_gateway.platforms.slack.commands import command_text
from hermes_gateway.platforms.slack.inbound import SlackInbound
from hermes_gateway.platforms.slack.mrkdwn import SLACK_LIMIT, measure
from hermes_gateway.platforms.slack.transport import (
    REQUEST_TIMEOUT,
    MethodBudget,
    SlackTransport,
    join_target,
)
from hermes_gateway.tasks import TaskSet

__all__ = ["SlackAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 30.0
"""How long start() waits for the first connection before returning anyway."""
CONNECT_TIMEOUT = 20.0
WATCH_EVERY = 0.25
"""How often the watcher looks whether the socket closed (slack_sdk tells no one)."""
MAX_INBOUND_BYTES = 25 * 1024 * 1024
_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"}
)
_NOT_ALLOWED = "You are not allowed to use this bot."


class SlackAdapter(PlatformAdapter):
    """Slack DMs, channels and threads.

    Args:
        config: The gateway configuration (``config.platforms.slack`` is used).
        policy: Who may talk; consulted here only for files, threads to follow and slash
            commands (the runner makes the real decision).
        commands: The registry slash commands are checked against; by default the host's.
    """

    name = "slack"

    def __init__(
        self, config: Config, policy: AccessPolicy, *, commands: CommandRegistry | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.cfg = config.platforms.slack
        self.policy = policy
        self._commands = commands
        self.web: AsyncWebClient | None = None
        self.app: AsyncApp | None = None
        self.socket: SocketModeClient | None = None
        budget = MethodBudget(self.cfg.updates_per_minute, self.cfg.updates_per_minute / 4)
        self.transport = SlackTransport(lambda: self.web, updates=budget)
        self.gate = RateGate(self.cfg.rate_interval)
        # Uploads, no typing indicator (the adapter has never sent one).
        self.answers = AnswerTurns(
            self.name,
            config.paths.home,
            upload=self._upload,
            pacing=self.cfg,
            display=config.display,
        )
        self.inbound = SlackInbound(self.cfg, policy, self._save_file, self._user_name)
        self._names: dict[str, str] = {}
        self.link = ConnectionLoop(
            self,
            "Slack",
            Backoff(self.cfg.reconnect_initial, self.cfg.reconnect_cap),
            describe=_describe,
        )
        self._checked = False
        self._tasks = TaskSet("slack")
        self._http: aiohttp.ClientSession | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.cfg.token:
            raise FatalPlatformError("SLACK_BOT_TOKEN is not set")
        if not self.cfg.app_token:
            raise FatalPlatformError(
                "SLACK_APP_TOKEN is not set (an app-level xapp- token with connections:write "
                "is needed for Socket Mode)"
            )
        if self.gate.closed:
            self.gate = RateGate(self.cfg.rate_interval)
        self._checked = False
        await self.link.start(self._session, wait=START_WAIT, waiting="waiting for Slack")

    async def stop(self) -> None:
        await self.link.stop()
        await self._close_socket()
        await self._tasks.cancel_all()
        await self.gate.aclose()
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.link.set_state("stopped")

    def _build(self) -> None:
        """The Web API client and the Bolt app, once per adapter start."""
        base = self.cfg.api_base or "https://slack.com/api/"
        if not base.endswith("/"):
            base += "/"
        self.web = AsyncWebClient(token=self.cfg.token, base_url=base, timeout=int(REQUEST_TIMEOUT))
        app = AsyncApp(
            client=self.web,
            signing_secret="socket-mode",  # unused: Socket Mode requests are not signed
            process_before_response=True,
            request_verification_enabled=False,
            name="hermes",
        )
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_ignored)  # the "message" event carries it too
        app.command(re.compile(r"^/.+"))(self._on_command)
        self.app = app

    async def _check_bot_token(self) -> None:
        """``auth.test``: who the bot is; a refused token is fatal."""
        assert self.web is not None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                auth = await self.web.auth_test()
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in _AUTH_ERRORS:
                raise FatalPlatformError(f"SLACK_BOT_TOKEN was refused by Slack ({error})") from exc
            raise
        self.inbound.bot_user = str(auth.get("user_id") or "")
        self._team = str(auth.get("team") or "")
        self._bot_name = str(auth.get("user") or "")

    async def _connect(self) -> SocketModeClient:
        """Open one Socket Mode connection (its URL from ``apps.connections.open``)."""
        assert self.app is not None and self.web is not None
        handler = AsyncSocketModeHandler(self.app, self.cfg.app_token, web_client=self.web)
        client = handler.client
        client.default_auto_reconnect_enabled = False  # the watcher reconnects, with backoff
        client.auto_reconnect_enabled = False
        self.socket = client
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                client.wss_uri = await client.issue_new_wss_url()
                await client.connect()  # type: ignore[no-untyped-call]
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in _AUTH_ERRORS:
                raise FatalPlatformError(f"SLACK_APP_TOKEN was refused by Slack ({error})") from exc
            raise
        client.auto_reconnect_enabled = False
        return client

    async def _close_socket(self) -> None:
        client, self.socket = self.socket, None
        if client is not None:
            try:
                async with asyncio.timeout(5):
                    await client.close()  # type: ignore[no-untyped-call]
            except Exception:
                log.debug("closing the Slack socket failed", exc_info=True)

    async def _session(self) -> str:
        """Check the bot token once per start, open Socket Mode, run until the socket closes."""
        try:
            if self.web is None:
                self._build()
            if not self._checked:
                await self._check_bot_token()
                self._checked = True
            client = await self._connect()
            where = f" in {self._team}" if self._team else ""
            self.link.connected(f"as {self._bot_name}{where}")
            await self._until_closed(client)
        finally:
            await self._close_socket()
        return "Socket Mode connection lost"

    async def _until_closed(self, client: SocketModeClient) -> None:
        """Until the socket is gone (slack_sdk swaps sessions itself on ``disconnect``)."""
        while not self.link.stopping and not client.closed:
            session = client.current_session
            if session is None or session.closed:
                # A ``disconnect`` refresh replaces the session: give it a moment to appear.
                await asyncio.sleep(WATCH_EVERY)
                session = client.current_session
                if session is None or session.closed:
                    return
            await asyncio.sleep(WATCH_EVERY)

    _team = ""
    _bot_name = ""

    # --- inbound ------------------------------------------------------------------------

    async def _on_ignored(self, **_: Any) -> None:
        return None

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """A ``message`` event: stored by the runner before Bolt acknowledges it.

        IntakeError propagates: Bolt then answers the envelope with an error and sends no
        acknowledgement, so Slack delivers the event again.
        """
        event_id = str(body.get("event_id") or "")
        if not self.inbound.first_delivery(event_id):
            return
        msg = await self.inbound.normalize(event)
        if msg is None:
            return
        try:
            await self.dispatch(msg)
        except IntakeError:
            self.inbound.forget(event_id, msg)
            raise

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        """A slash command: acknowledged at once, then run through the runner like text."""
        user = str(command.get("user_id") or "")
        channel = str(command.get("channel_id") or "")
        text = command_text(
            str(command.get("command") or ""), str(command.get("text") or ""), self._registry()
        )
        if not user or not channel or text is None:
            await ack(text="Hermes does not know this command.")
            return
        kind = "im" if channel.startswith("D") else "channel"
        name = await self._user_name(user)
        source = self.inbound.source(channel, kind, user, name, None)
        allowed = await self.policy.is_allowed(source)
        if not allowed and kind != "im":
            await ack(text=_NOT_ALLOWED)
            return
        await ack()
        event = MessageEvent(text=text, source=source, mentioned=True)
        self._tasks.spawn(self._dispatch_command(event), name=f"slack-command:{channel}")

    async def _dispatch_command(self, event: MessageEvent) -> None:
        await self.dispatch(event)

    def _registry(self) -> CommandRegistry | None:
        if self._commands is not None:
            return self._commands
        return self.host.commands if self.bound else None

    async def _user_name(self, user: str) -> str | None:
        """A user's display name (``users.info``, cached); None when Slack will not say."""
        if user in self._names:
            return self._names[user]
        web = self.web
        if web is None:
            return None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                resp = await web.users_info(user=user)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.debug("users.info failed for a user: %s", exc)
            return None
        info = resp.get("user") or {}
        profile = info.get("profile") or {}
        name = str(profile.get("display_name") or info.get("real_name") or info.get("name") or "")
        if len(self._names) > 4096:
            self._names.clear()
        self._names[user] = name or user
        return self._names[user]

    async def _save_file(self, file: dict[str, Any]) -> MediaRef | None:
        """Download a shared file with the bot token (Slack's file URLs need it)."""
        url = file.get("url_private_download") or file.get("url_private")
        size = file.get("size") or 0
        if not isinstance(url, str) or not url:
            return None
        if isinstance(size, int) and size > MAX_INBOUND_BYTES:
            log.info("Slack file %s is too large (%d bytes)", file.get("name"), size)
            return None
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self.cfg.token}"}
        try:
            async with (
                asyncio.timeout(REQUEST_TIMEOUT),
                self._http.get(url, headers=headers) as resp,
            ):
                if resp.status != 200 or resp.content_type.startswith("text/html"):
                    log.warning("could not download a Slack file (HTTP %s)", resp.status)
                    return None
                data = await read_limited(resp.content, MAX_INBOUND_BYTES)
        except TooLarge:
            return None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not download a Slack file: %s", exc)
            return None
        return await save_media(
            self.config.paths.media_dir,
            data,
            platform=self.name,
            unique_id=str(file.get("id") or "file"),
            file_name=str(file.get("name") or "") or None,
            mime_type=str(file.get("mimetype") or "") or None,
        )

    # --- delivery -----------------------------------------------------------------------

    @staticmethod
    def target(source: SessionSource) -> str:
        return join_target(source.chat_id, source.thread_id)

    async def send(self, source: SessionSource, text: str) -> None:
        target = self.target(source)
        transport = self.transport
        for chunk in split_message(text, SLACK_LIMIT, measure=measure):
            await self.gate.run(target, functools.partial(transport.send_text, target, chunk))

    async def send_file(self, source: SessionSource, path: str | Path, caption: str = "") -> None:
        target = self.target(source)
        transport = self.transport
        await self.gate.run(target, lambda: transport.send_file(target, Path(path), caption))

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        return self.answers.streamed(self.transport, self.gate, source, self.target(source))

    async def _upload(self, chat: str, path: Path) -> None:
        transport = self.transport
        await self.gate.run(chat, lambda: transport.send_file(chat, path))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return f"Slack refused ({exc.response.get('error', 'error')})"
    if isinstance(exc, TimeoutError):
        return "Slack did not answer in time"
    return str(exc) or type(exc).__name__
