"""A fake Discord (REST API + gateway websocket) for tests that run the real discord.py.

Why this exists: the Discord adapter must be exercised against discord.py itself (its
rate-limit bucket logic, gateway heartbeat/reconnect/resume state machine and payload
parsing), never against mocks. This module serves a protocol-faithful subset of Discord on
127.0.0.1 so tests can drive the real client over real sockets and inject what production
throws at it: gateway drops, RECONNECT / INVALID_SESSION opcodes, 429s and error envelopes.

How discord.py 2.7.1 is redirected (see :func:`patch_discord`):

* REST: every call builds ``discord.http.Route(...)``, whose URL is ``Route.BASE + path``
  computed at construction time, so replacing the class attribute ``Route.BASE`` redirects
  all REST traffic.
* Gateway: a plain ``discord.Client`` never calls ``GET /gateway/bot``; it connects straight
  to ``DiscordWebSocket.DEFAULT_GATEWAY`` (a ``yarl.URL``). It also falls back to that URL
  after a non-resumable INVALID_SESSION, and resumes on READY's ``resume_gateway_url``.
  Only ``AutoShardedClient`` asks ``/gateway/bot``, which we also serve.

Wire facts this fake honours because discord.py depends on them:

* JSON responses must carry ``Content-Type: application/json`` *exactly* (no charset);
  otherwise ``discord.http.json_or_text`` returns the body as a string.
* A 429 is only retried when the response has a ``Via`` header and a JSON body; otherwise
  discord.py assumes a Cloudflare ban and raises ``HTTPException``.
* The gateway URL carries ``v=10&encoding=json&compress=zlib-stream`` (``zstd-stream`` when
  ``zstandard`` / ``compression.zstd`` is importable). Client code cannot switch compression
  off, so the fake implements both transport compressions (one stream per connection, every
  message flushed with ``Z_SYNC_FLUSH`` / a zstd block flush) and plain JSON for raw clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import math
import re
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

_log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1_420_070_400_000
MAX_MESSAGE_LENGTH = 2000

DEFAULT_BOT_ID = 1_180_000_000_000_000_001
DEFAULT_APP_ID = 1_180_000_000_000_000_999


class Intents:
    """Gateway intent bits the fake filters dispatches by (Discord API v10 values)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
    ALL = (1 << 26) - 1


class ChannelType:
    """Discord channel type numbers used by the fake."""

    GUILD_TEXT = 0
    DM = 1
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    THREAD_TYPES = (10, 11, 12)


class Op:
    """Gateway opcodes."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


# Permissions given to @everyone so permission checks in adapters behave like a normal server:
# add reactions, view channel, send messages, embed links, attach files, read history,
# use application commands, create public threads, send messages in threads.
_EVERYONE_PERMISSIONS = (
    (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 31) | (1 << 35)
) | (1 << 38)

_MENTION_RE = re.compile(r"<@!?(\d+)>")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class _Snowflakes:
    """Generates real-looking, strictly increasing snowflake ids (time-ordered like Discord's)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


# --------------------------------------------------------------------------- public records


@dataclass
class SentFile:
    """A file the bot uploaded (multipart ``files[n]`` part)."""

    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class ThreadInfo:
    """A thread created through REST by the bot (or injected by a test)."""

    thread_id: int
    parent_id: int
    guild_id: int
    name: str
    type: int
    owner_id: int
    starter_message_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class SentMessage:
    """A message the bot posted through ``POST /channels/{id}/messages``.

    ``edits`` gets the message content after every successful PATCH (so its length is the
    number of edits), ``thread`` is set when the bot later starts a thread from this message,
    and ``thread_parent_id`` is set when the message was posted *into* a thread.
    """

    channel_id: int
    message_id: int
    content: str
    guild_id: int | None = None
    thread_parent_id: int | None = None
    reply_to: int | None = None
    files: list[SentFile] = field(default_factory=list)
    embeds: list[dict[str, Any]] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)
    edits: list[str] = field(default_factory=list)
    thread: ThreadInfo | None = None
    deleted: bool = False

    @property
    def current_content(self) -> str:
        """Content as the user would see it now (after the last edit)."""
        return self.edits[-1] if self.edits else self.content

    @property
    def in_thread(self) -> bool:
        """True when the message was posted inside a thread."""
        return self.thread_parent_id is not None


@dataclass
class RestCall:
    """One REST request as received (after auth), for debugging and assertions."""

    method: str
    path: str
    status: int = 0


# --------------------------------------------------------------------------- internal state


@dataclass
class _User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass
class _Channel:
    id: int
    type: int
    guild_id: int | None = None
    name: str | None = None
    parent_id: int | None = None
    recipient_id: int | None = None
    owner_id: int | None = None
    position: int = 0
    last_message_id: int | None = None
    message_count: int = 0
    created_at: str = field(default_factory=_now_iso)

    @property
    def is_thread(self) -> bool:
        return self.type in ChannelType.THREAD_TYPES


@dataclass
class _Guild:
    id: int
    name: str
    owner_id: int
    channel_ids: list[int] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=_now_iso)


@dataclass
class _RateLimitRule:
    method: str
    pattern: re.Pattern[str]
    retry_after: float
    times: int
    is_global: bool = False


@dataclass
class _FailRule:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    times: int


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[web.Request, re.Match[str]], Awaitable[web.StreamResponse]]
    auth: bool = True

    @property
    def bucket(self) -> str:
        return f"{zlib.crc32(f'{self.method} {self.pattern.pattern}'.encode()):08x}"


def _make_compressor(kind: str | None) -> Callable[[str], bytes] | None:
    """Return a per-connection transport compressor for the ``compress`` query value.

    Discord transport compression is one stream per connection: every gateway message is
    compressed into the same context and flushed so the client can decode it immediately.
    """
    if not kind:
        return None
    if kind == "zlib-stream":
        context = zlib.compressobj()

        def _zlib(text: str) -> bytes:
            return context.compress(text.encode()) + context.flush(zlib.Z_SYNC_FLUSH)

        return _zlib
    if kind == "zstd-stream":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            try:
                from compression.zstd import ZstdCompressor  # type: ignore[import-not-found]
            except ImportError as exc:
                raise ValueError("zstd-stream requested but no zstd library is available") from exc
            stdlib = ZstdCompressor()
            return lambda text: stdlib.compress(text.encode(), mode=ZstdCompressor.FLUSH_BLOCK)
        zobj = zstandard.ZstdCompressor().compressobj()
        return lambda text: (
            zobj.compress(text.encode()) + zobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        )
    raise ValueError(f"unsupported compress value {kind!r}")


class _Connection:
    """One gateway websocket; serialises sends so the compression stream stays ordered."""

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, compress: str | None
    ) -> None:
        self.ws = ws
        self.request = request
        self.compress = compress
        self._compressor = _make_compressor(compress)
        self._lock = asyncio.Lock()
        self.session: _Session | None = None
        self.last_heartbeat = time.monotonic()
        self.alive = True
        self.server_closed = False

    async def send(self, frame: dict[str, Any]) -> bool:
        text = json.dumps(frame, separators=(",", ":"))
        async with self._lock:
            if not self.alive or self.ws.closed:
                return False
            try:
                if self._compressor is not None:
                    await self.ws.send_bytes(self._compressor(text))
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self.alive = False
                return False
        return True

    async def close(self, code: int, reason: str) -> None:
        self.server_closed = True
        self.alive = False
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 2.0)

    def abort(self) -> None:
        """Kill the TCP connection without a close frame (a network drop)."""
        self.server_closed = True
        self.alive = False
        transport = self.request.transport
        if transport is not None:
            transport.abort()


@dataclass
class _Session:
    session_id: str
    intents: int
    shard: tuple[int, int]
    seq: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)
    conn: _Connection | None = None
    invalidated: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


# --------------------------------------------------------------------------- the fake


class FakeDiscord:
    """In-process fake of Discord's REST API and gateway for the real discord.py client.

    Args:
        token: the only bot token accepted (REST ``Authorization: Bot <token>`` and IDENTIFY).
        bot_id: the bot user's id (READY ``user``, ``/users/@me``).
        app_id: the application id (``/oauth2/applications/@me``); deliberately different from
            ``bot_id`` by default so code that mixes them up fails.
        bot_name: the bot's username.
        heartbeat_interval: seconds announced in HELLO (Discord uses 41.25); make it small in
            tests to exercise heartbeats.
        heartbeat_timeout: close a connection with 4009 when no heartbeat arrived for this
            long; defaults to ``max(3 * interval, interval + 5)`` so a busy CI box does not
            cause spurious reconnects. ``None`` keeps the default, ``0`` disables the check.
        echo_bot_messages: dispatch MESSAGE_CREATE/UPDATE/DELETE for the bot's own REST
            actions, as Discord does (adapters must ignore their own messages).
        privileged_intents: privileged intents "enabled in the developer portal"; requesting
            others closes the gateway with 4014 like Discord.
    """

    def __init__(
        self,
        token: str = "FAKE.DISCORD.TOKEN",
        *,
        bot_id: int = DEFAULT_BOT_ID,
        app_id: int = DEFAULT_APP_ID,
        bot_name: str = "hermes-bot",
        heartbeat_interval: float = 41.25,
        heartbeat_timeout: float | None = None,
        echo_bot_messages: bool = True,
        privileged_intents: int = Intents.PRIVILEGED,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.app_id = app_id
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = (
            max(3 * heartbeat_interval, heartbeat_interval + 5.0)
            if heartbeat_timeout is None
            else heartbeat_timeout
        )
        self.echo_bot_messages = echo_bot_messages
        self.privileged_intents = privileged_intents
        self.port = 0

        # Records for assertions.
        self.sent: list[SentMessage] = []
        self.typing: list[int] = []
        self.commands_payloads: list[list[dict[str, Any]]] = []
        self.guild_commands_payloads: list[tuple[int, list[dict[str, Any]]]] = []
        self.threads: list[ThreadInfo] = []
        self.reactions: list[tuple[int, int, str]] = []
        self.presences: list[dict[str, Any]] = []
        self.requests: list[RestCall] = []
        self.rate_limited: list[tuple[str, str]] = []
        self.identify_payloads: list[dict[str, Any]] = []
        self.gateway_connects: list[str] = []
        self.identifies = 0
        self.resumes = 0
        self.failed_resumes = 0
        self.heartbeats = 0

        self._ids = _Snowflakes()
        self._bot = _User(bot_id, bot_name, bot=True)
        self._users: dict[int, _User] = {bot_id: self._bot}
        self._guilds: dict[int, _Guild] = {}
        self._channels: dict[int, _Channel] = {}
        self._messages: dict[int, dict[str, Any]] = {}
        self._sent_by_id: dict[int, SentMessage] = {}
        self._files: dict[int, tuple[bytes, str | None]] = {}
        self._global_commands: list[dict[str, Any]] = []
        self._guild_commands: dict[int, list[dict[str, Any]]] = {}
        self._sessions: dict[str, _Session] = {}
        self._conns: set[_Connection] = set()
        self._rate_rules: list[_RateLimitRule] = []
        self._fail_rules: list[_FailRule] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> None:
        """Serve REST, CDN and gateway on 127.0.0.1 (``port=0`` picks a free port)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/resume", self._gateway)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._cdn)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close every gateway connection (1001 going away) and stop the server."""
        for conn in list(self._conns):
            await conn.close(1001, "Fake Discord shutting down.")
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rest_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY`` and ``GET /gateway/bot``."""
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        """READY's ``resume_gateway_url``: a different path so tests can see it is used."""
        return f"ws://127.0.0.1:{self.port}/resume"

    # ------------------------------------------------------------------ world setup

    def add_user(self, user_id: int, username: str, *, bot: bool = False) -> None:
        """Register a user that can author messages, be mentioned and receive DMs."""
        self._users[user_id] = _User(user_id, username, bot=bot)

    def add_guild(
        self,
        guild_id: int,
        name: str,
        channels: list[int],
        *,
        member_ids: list[int] | None = None,
        owner_id: int | None = None,
        channel_names: dict[int, str] | None = None,
    ) -> None:
        """Add a guild with text channels; the bot is always a member.

        Guilds added while a session is live are announced with GUILD_CREATE (a bot join).
        """
        members = [self.bot_id, *(m for m in member_ids or [] if m != self.bot_id)]
        for member in members:
            self._users.setdefault(member, _User(member, f"user{member}"))
        guild = _Guild(
            guild_id,
            name,
            owner_id if owner_id is not None else (members[1] if len(members) > 1 else self.bot_id),
            list(channels),
            members,
        )
        self._guilds[guild_id] = guild
        for position, channel_id in enumerate(channels):
            label = (channel_names or {}).get(channel_id, f"channel-{channel_id}")
            self._channels[channel_id] = _Channel(
                channel_id, ChannelType.GUILD_TEXT, guild_id, label, position=position
            )
        if self._sessions:
            self._spawn(self._dispatch_all("GUILD_CREATE", self._guild_payload(guild)))
        self._bump()

    # ------------------------------------------------------------------ injection

    async def inject_message(
        self,
        channel_id: int,
        content: str,
        *,
        author_id: int,
        guild_id: int | None = None,
        mentions_bot: bool = False,
        thread_parent_id: int | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user posts a message; MESSAGE_CREATE goes to every live or resumable session.

        ``guild_id=None`` makes it a DM (``channel_id`` becomes that user's DM channel).
        ``thread_parent_id`` makes ``channel_id`` a thread under that guild channel; an
        unknown thread is created first (THREAD_CREATE), as it would exist on Discord.
        ``mentions_bot`` puts ``<@bot_id>`` in front of the content if it is not there; every
        ``<@id>`` of a known user in the content is listed in ``mentions``.
        Attachment dicts may carry ``data`` (bytes) which the fake CDN then serves at ``url``.
        Returns the MESSAGE_CREATE payload.
        """
        author = self._users.setdefault(author_id, _User(author_id, f"user{author_id}"))
        if guild_id is None:
            channel = self._channels.get(channel_id)
            if channel is None:
                channel = _Channel(channel_id, ChannelType.DM, recipient_id=author_id)
                self._channels[channel_id] = channel
            elif channel.type != ChannelType.DM:
                raise ValueError(f"channel {channel_id} is a guild channel, pass guild_id")
        else:
            guild = self._guilds.get(guild_id)
            if guild is None:
                raise ValueError(f"unknown guild {guild_id}; call add_guild first")
            if author_id not in guild.member_ids:
                guild.member_ids.append(author_id)
            if thread_parent_id is not None:
                if thread_parent_id not in guild.channel_ids:
                    raise ValueError(f"channel {thread_parent_id} is not in guild {guild_id}")
                if channel_id not in self._channels:
                    await self.inject_thread_create(
                        channel_id, thread_parent_id, guild_id, f"thread-{channel_id}"
                    )
            elif channel_id not in guild.channel_ids:
                raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
            channel = self._channels[channel_id]
        if (
            mentions_bot
            and f"<@{self.bot_id}>" not in content
            and f"<@!{self.bot_id}>" not in content
        ):
            content = f"<@{self.bot_id}> {content}"
        message = self._message_payload(
            channel,
            author,
            content,
            attachments=[self._attachment(channel.id, a) for a in attachments or []],
        )
        await self._dispatch_all("MESSAGE_CREATE", message)
        return copy.deepcopy(message)

    async def inject_thread_create(
        self,
        thread_id: int,
        parent_id: int,
        guild_id: int,
        name: str,
        *,
        owner_id: int | None = None,
        thread_type: int = ChannelType.PUBLIC_THREAD,
    ) -> None:
        """A user creates a thread under ``parent_id``; THREAD_CREATE (newly_created) is sent."""
        guild = self._guilds.get(guild_id)
        if guild is None or parent_id not in guild.channel_ids:
            raise ValueError(f"parent {parent_id} is not a channel of guild {guild_id}")
        thread = self._create_thread(
            guild, parent_id, name, thread_type, owner_id or guild.owner_id, thread_id=thread_id
        )
        await self._dispatch_all(
            "THREAD_CREATE", {**self._channel_payload(thread), "newly_created": True}
        )

    async def send_reconnect(self) -> None:
        """Send op 7 RECONNECT on every live connection (the client must reconnect + RESUME)."""
        for conn in list(self._conns):
            if conn.session is not None:
                await conn.send({"op": Op.RECONNECT, "d": None, "s": None, "t": None})

    async def send_invalid_session(self, resumable: bool) -> None:
        """Send op 9 INVALID_SESSION; when not resumable the sessions are discarded."""
        for conn in list(self._conns):
            session = conn.session
            if session is None:
                continue
            if not resumable:
                session.invalidated = True
            await conn.send({"op": Op.INVALID_SESSION, "d": resumable, "s": None, "t": None})
        self._bump()

    async def request_heartbeat(self) -> None:
        """Send op 1 to every live connection; the client must answer with a heartbeat."""
        for conn in list(self._conns):
            await conn.send({"op": Op.HEARTBEAT, "d": None, "s": None, "t": None})

    async def drop_connection(self) -> None:
        """Abort every gateway TCP connection (no close frame); sessions stay resumable."""
        for conn in list(self._conns):
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            conn.abort()
        self._bump()

    def rate_limit_next(
        self,
        method: str,
        path_regex: str,
        *,
        retry_after: float,
        times: int = 1,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` matching REST calls with a 429.

        ``path_regex`` is matched with ``re.fullmatch`` against the path after ``/api/v10``,
        e.g. ``r"/channels/\\d+/messages/\\d+"``.
        """
        self._rate_rules.append(
            _RateLimitRule(method.upper(), re.compile(path_regex), retry_after, times, is_global)
        )

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching REST calls with a Discord error envelope."""
        body = {"message": message or f"{status}: injected failure", "code": code}
        self._fail_rules.append(
            _FailRule(method.upper(), re.compile(path_regex), status, body, times)
        )

    def delete_as_moderator(self, message_id: int) -> None:
        """Delete a bot message the way a moderator would (later edits: Unknown Message)."""
        del self._messages[message_id]
        self._sent_by_id[message_id].deleted = True

    # ------------------------------------------------------------------ queries

    def messages_in(self, channel_id: int) -> list[SentMessage]:
        """Messages the bot posted in ``channel_id`` (a thread id selects the thread)."""
        return [m for m in self.sent if m.channel_id == channel_id]

    def dm_channel_for(self, user_id: int) -> int | None:
        """The DM channel id with ``user_id`` if one exists."""
        for channel in self._channels.values():
            if channel.type == ChannelType.DM and channel.recipient_id == user_id:
                return channel.id
        return None

    @property
    def live_connections(self) -> int:
        """Gateway connections with an identified or resumed session."""
        return sum(1 for c in self._conns if c.alive and c.session is not None)

    # The brief fixes this signature for test authors, hence the noqa.
    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` (no arguments) is true; re-checked on every state change.

        Raises:
            TimeoutError: the predicate stayed false for ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            event = self._changed
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"FakeDiscord.wait_for: condition not met in {timeout}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))

    # ------------------------------------------------------------------ internals: misc

    def _bump(self) -> None:
        """Wake ``wait_for`` callers: swap in a fresh event and fire the old one."""
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.token

    # ------------------------------------------------------------------ internals: payloads

    def _member_payload(
        self, user: _User, guild: _Guild, *, with_user: bool = True
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "roles": [],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": guild.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = user.payload()
        return payload

    def _channel_payload(self, channel: _Channel) -> dict[str, Any]:
        if channel.type == ChannelType.DM:
            recipient = self._users.get(channel.recipient_id or 0)
            return {
                "id": str(channel.id),
                "type": ChannelType.DM,
                "last_message_id": str(channel.last_message_id)
                if channel.last_message_id
                else None,
                "flags": 0,
                "recipients": [recipient.payload()] if recipient else [],
            }
        base: dict[str, Any] = {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "last_message_id": str(channel.last_message_id) if channel.last_message_id else None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "nsfw": False,
        }
        if channel.is_thread:
            base.update(
                parent_id=str(channel.parent_id),
                owner_id=str(channel.owner_id),
                message_count=channel.message_count,
                total_message_sent=channel.message_count,
                member_count=1,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": channel.created_at,
                    "locked": False,
                    "invitable": True,
                    "create_timestamp": channel.created_at,
                },
            )
        else:
            base.update(
                position=channel.position, permission_overwrites=[], parent_id=None, topic=None
            )
        return base

    def _guild_payload(self, guild: _Guild) -> dict[str, Any]:
        threads = [
            self._channel_payload(c)
            for c in self._channels.values()
            if c.is_thread and c.guild_id == guild.id
        ]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [
                {
                    "id": str(guild.id),
                    "name": "@everyone",
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False,
                    "icon": None,
                    "unicode_emoji": None,
                    "position": 0,
                    "permissions": str(_EVERYONE_PERMISSIONS),
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(guild.member_ids),
            "members": [self._member_payload(self._users[m], guild) for m in guild.member_ids],
            "channels": [self._channel_payload(self._channels[c]) for c in guild.channel_ids],
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _attachment(self, channel_id: int, spec: dict[str, Any]) -> dict[str, Any]:
        spec = dict(spec)
        data = spec.pop("data", None)
        if isinstance(data, str):
            data = data.encode()
        attachment_id = int(spec.pop("id", 0) or self._ids.next())
        filename = spec.pop("filename", "file.bin")
        content_type = spec.pop("content_type", None)
        url = spec.pop("url", None) or (
            f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{filename}"
        )
        if data is not None:
            self._files[attachment_id] = (bytes(data), content_type)
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": spec.pop("size", len(data) if data is not None else 0),
            "url": url,
            "proxy_url": spec.pop("proxy_url", url),
            "content_type": content_type,
            **spec,
        }

    def _message_payload(
        self,
        channel: _Channel,
        author: _User,
        content: str,
        *,
        attachments: list[dict[str, Any]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        reference: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build, store and return a full message object (the MESSAGE_CREATE shape)."""
        message_id = self._ids.next()
        guild = self._guilds.get(channel.guild_id or 0)
        mentions: list[dict[str, Any]] = []
        for raw_id in dict.fromkeys(_MENTION_RE.findall(content)):
            user = self._users.get(int(raw_id))
            if user is None:
                continue
            mention = user.payload()
            if guild is not None:
                mention["member"] = self._member_payload(user, guild, with_user=False)
            mentions.append(mention)
        payload: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["member"] = self._member_payload(author, guild, with_user=False)
        if reference is not None:
            payload["type"] = 19  # REPLY
            payload["message_reference"] = {"type": 0, **reference}
            referenced = self._messages.get(int(reference["message_id"]))
            if referenced is not None:
                payload["referenced_message"] = copy.deepcopy(referenced)
        self._messages[message_id] = payload
        channel.last_message_id = message_id
        channel.message_count += 1
        return payload

    def _create_thread(
        self,
        guild: _Guild,
        parent_id: int,
        name: str,
        thread_type: int,
        owner_id: int,
        *,
        thread_id: int | None = None,
    ) -> _Channel:
        thread = _Channel(
            thread_id or self._ids.next(),
            thread_type,
            guild.id,
            name,
            parent_id=parent_id,
            owner_id=owner_id,
        )
        self._channels[thread.id] = thread
        return thread

    # ------------------------------------------------------------------ internals: gateway

    def _filter(self, session: _Session, event: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply shard routing and intents the way Discord does; None means "not sent"."""
        raw_guild = (
            data.get("id")
            if event.startswith("GUILD_") and event != "GUILD_MEMBERS_CHUNK"
            else data.get("guild_id")
        )
        guild_id = int(raw_guild) if raw_guild is not None else None
        shard_id, shard_count = session.shard
        if event not in ("READY", "RESUMED"):
            owner_shard = (guild_id >> 22) % shard_count if guild_id is not None else 0
            if owner_shard != shard_id:
                return None
        intents = session.intents
        if event.startswith(("GUILD_CREATE", "GUILD_DELETE", "THREAD_", "CHANNEL_")):
            if guild_id is not None and not intents & Intents.GUILDS:
                return None
        if event.startswith("MESSAGE_"):
            needed = Intents.GUILD_MESSAGES if guild_id is not None else Intents.DIRECT_MESSAGES
            if not intents & needed:
                return None
            if guild_id is not None and not intents & Intents.MESSAGE_CONTENT and "author" in data:
                mentioned = any(int(m["id"]) == self.bot_id for m in data.get("mentions", []))
                if int(data["author"]["id"]) != self.bot_id and not mentioned:
                    data = {
                        **data,
                        "content": "",
                        "embeds": [],
                        "attachments": [],
                        "components": [],
                    }
        return data

    async def _dispatch_locked(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        """Sequence, buffer (for RESUME replay) and send one dispatch; caller holds the lock."""
        filtered = self._filter(session, event, data)
        if filtered is None:
            return
        session.seq += 1
        frame = {"op": Op.DISPATCH, "t": event, "s": session.seq, "d": copy.deepcopy(filtered)}
        session.frames.append(frame)
        if session.conn is not None:
            await session.conn.send(frame)

    async def _dispatch_all(self, event: str, data: dict[str, Any]) -> None:
        for session in list(self._sessions.values()):
            if session.invalidated:
                continue
            async with session.lock:
                await self._dispatch_locked(session, event, data)
        self._bump()

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        self.gateway_connects.append(request.path_qs)
        version = request.query.get("v", "10")
        encoding = request.query.get("encoding", "json")
        compress = request.query.get("compress") or None
        try:
            _make_compressor(compress)
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = _Connection(ws, request, compress)
        self._conns.add(conn)
        watchdog = asyncio.ensure_future(self._watch_heartbeats(conn))
        try:
            if version not in ("9", "10"):
                await conn.close(4012, "Invalid API version.")
                return ws
            if encoding != "json":
                await conn.close(4002, "Error while decoding payload.")
                return ws
            hello = {
                "heartbeat_interval": int(self.heartbeat_interval * 1000),
                "_trace": ["fake-gw"],
            }
            await conn.send({"op": Op.HELLO, "d": hello, "s": None, "t": None})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    await conn.close(4002, "Error while decoding payload.")
                    break
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await conn.close(4002, "Error while decoding payload.")
                    break
                await self._handle_op(conn, payload)
                if not conn.alive:
                    break
        except ConnectionError:
            pass
        finally:
            watchdog.cancel()
            self._conns.discard(conn)
            conn.alive = False
            session = conn.session
            if session is not None:
                if session.conn is conn:
                    session.conn = None
                # A clean client close (1000/1001) ends the session on Discord; 4000 does not.
                if not conn.server_closed and ws.close_code in (1000, 1001):
                    session.invalidated = True
            self._bump()
        return ws

    async def _watch_heartbeats(self, conn: _Connection) -> None:
        if self.heartbeat_timeout <= 0:
            return
        while conn.alive:
            left = conn.last_heartbeat + self.heartbeat_timeout - time.monotonic()
            if left > 0:
                await asyncio.sleep(left)
                continue
            if conn.session is not None:
                conn.session.invalidated = True
            await conn.close(4009, "Session timed out.")
            return

    async def _handle_op(self, conn: _Connection, payload: Any) -> None:
        if not isinstance(payload, dict):
            await conn.close(4002, "Error while decoding payload.")
            return
        op = payload.get("op")
        data = payload.get("d")
        if op == Op.HEARTBEAT:
            self.heartbeats += 1
            conn.last_heartbeat = time.monotonic()
            await conn.send({"op": Op.HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            self._bump()
        elif op == Op.IDENTIFY:
            await self._identify(conn, data if isinstance(data, dict) else {})
        elif op == Op.RESUME:
            await self._resume(conn, data if isinstance(data, dict) else {})
        elif op not in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE, Op.REQUEST_GUILD_MEMBERS):
            await conn.close(4001, "Unknown opcode.")
        elif conn.session is None:
            await conn.close(4003, "Not authenticated.")
        elif op == Op.PRESENCE_UPDATE:
            self.presences.append(data)
            self._bump()
        elif op == Op.REQUEST_GUILD_MEMBERS:
            await self._members_chunk(conn.session, data if isinstance(data, dict) else {})

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            await conn.close(4005, "Already authenticated.")
            return
        if not self._token_ok(data.get("token")):
            await conn.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~Intents.ALL:
            await conn.close(4013, "Invalid intent(s).")
            return
        if intents & Intents.PRIVILEGED & ~self.privileged_intents:
            await conn.close(4014, "Disallowed intent(s).")
            return
        shard = data.get("shard") or [0, 1]
        if not (isinstance(shard, list) and len(shard) == 2 and 0 <= shard[0] < shard[1]):
            await conn.close(4010, "Invalid shard.")
            return
        session = _Session(secrets.token_hex(16), intents, (int(shard[0]), int(shard[1])))
        self._sessions[session.session_id] = session
        self.identifies += 1
        self.identify_payloads.append(copy.deepcopy(data))
        guilds = [
            g for g in self._guilds.values() if (g.id >> 22) % session.shard[1] == session.shard[0]
        ]
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self._bot.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-gw"],
        }
        if "shard" in data:
            ready["shard"] = list(session.shard)
        async with session.lock:
            session.conn = conn
            conn.session = session
            await self._dispatch_locked(session, "READY", ready)
            for guild in guilds:
                await self._dispatch_locked(session, "GUILD_CREATE", self._guild_payload(guild))
        self._bump()

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        if not self._token_ok(data.get("token")):
            await conn.close(4004, "Authentication failed.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or session.invalidated:
            self.failed_resumes += 1
            await conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            self._bump()
            return
        seq = data.get("seq") or 0
        if not isinstance(seq, int) or seq > session.seq:
            await conn.close(4007, "Invalid seq.")
            return
        async with session.lock:
            previous = session.conn
            if previous is not None and previous is not conn:
                previous.abort()
            session.conn = conn
            conn.session = session
            for frame in list(session.frames):
                if frame["s"] > seq:
                    await conn.send(frame)
            self.resumes += 1
            await self._dispatch_locked(session, "RESUMED", {"_trace": ["fake-gw"]})
        self._bump()

    async def _members_chunk(self, session: _Session, data: dict[str, Any]) -> None:
        guild = self._guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        wanted = {int(u) for u in data.get("user_ids") or []}
        query = str(data.get("query") or "").lower()
        members = [
            self._member_payload(self._users[m], guild)
            for m in guild.member_ids
            if (not wanted or m in wanted) and self._users[m].username.lower().startswith(query)
        ]
        chunk = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        async with session.lock:
            await self._dispatch_locked(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ internals: REST plumbing

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        # Exactly "application/json": discord.py compares the header verbatim.
        return web.Response(
            body=json.dumps(data).encode(),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    def _error(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> web.Response:
        body: dict[str, Any] = {"message": message, "code": code}
        if errors is not None:
            body["errors"] = errors
        return self._json(body, status)

    def _invalid_form(self, errors: dict[str, Any]) -> web.Response:
        return self._error(400, 50035, "Invalid Form Body", errors)

    @staticmethod
    def _field_error(code: str, message: str) -> dict[str, Any]:
        return {"_errors": [{"code": code, "message": message}]}

    def _build_routes(self) -> list[_Route]:
        def route(method: str, path: str, handler: Any, *, auth: bool = True) -> _Route:
            return _Route(method, re.compile(path), handler, auth)

        cid, mid = r"(\d+)", r"(\d+)"
        return [
            route("GET", r"/gateway", self._get_gateway, auth=False),
            route("GET", r"/gateway/bot", self._get_gateway_bot),
            route("GET", r"/users/@me", self._get_me),
            route("GET", r"/users/(\d+)", self._get_user),
            route("POST", r"/users/@me/channels", self._create_dm),
            route("GET", r"/oauth2/applications/@me", self._get_application),
            route("GET", r"/applications/@me", self._get_application),
            route("GET", rf"/channels/{cid}", self._get_channel),
            route("POST", rf"/channels/{cid}/messages", self._post_message),
            route("GET", rf"/channels/{cid}/messages/{mid}", self._get_message),
            route("PATCH", rf"/channels/{cid}/messages/{mid}", self._edit_message),
            route("DELETE", rf"/channels/{cid}/messages/{mid}", self._delete_message),
            route("PUT", rf"/channels/{cid}/messages/{mid}/reactions/([^/]+)/@me", self._react),
            route(
                "DELETE", rf"/channels/{cid}/messages/{mid}/reactions/([^/]+)/@me", self._unreact
            ),
            route("POST", rf"/channels/{cid}/typing", self._typing),
            route("POST", rf"/channels/{cid}/messages/{mid}/threads", self._thread_from_message),
            route("POST", rf"/channels/{cid}/threads", self._thread_without_message),
            route("PUT", rf"/channels/{cid}/thread-members/@me", self._join_thread),
            route("GET", r"/applications/(\d+)/commands", self._get_commands),
            route("PUT", r"/applications/(\d+)/commands", self._put_commands),
            route("GET", r"/applications/(\d+)/guilds/(\d+)/commands", self._get_commands),
            route("PUT", r"/applications/(\d+)/guilds/(\d+)/commands", self._put_commands),
        ]

    def _ratelimit_headers(self, bucket: str) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "4",
            "X-RateLimit-Reset": f"{time.time() + 1.0:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket,
        }

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method.upper()
        call = RestCall(method, path)
        self.requests.append(call)
        response = await self._route_rest(request, method, path)
        response.headers.setdefault("Via", "1.1 google")
        call.status = response.status
        self._bump()
        return response

    async def _route_rest(self, request: web.Request, method: str, path: str) -> web.StreamResponse:
        matches = [(r, m) for r in self._routes if (m := r.pattern.fullmatch(path))]
        if not matches:
            return self._error(404, 0, "404: Not Found")
        chosen = next(((r, m) for r, m in matches if r.method == method), None)
        if chosen is None:
            return self._error(405, 0, "405: Method Not Allowed")
        route, match = chosen
        if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._error(401, 0, "401: Unauthorized")
        for rule in self._rate_rules:
            if rule.times > 0 and rule.method == method and rule.pattern.fullmatch(path):
                rule.times -= 1
                self.rate_limited.append((method, path))
                return self._too_many(rule, route.bucket)
        for fail in self._fail_rules:
            if fail.times > 0 and fail.method == method and fail.pattern.fullmatch(path):
                fail.times -= 1
                return self._json(fail.body, fail.status)
        response = await route.handler(request, match)
        if response.status < 300:
            for key, value in self._ratelimit_headers(route.bucket).items():
                response.headers[key] = value
        return response

    def _too_many(self, rule: _RateLimitRule, bucket: str) -> web.Response:
        headers = {
            "Retry-After": str(max(1, math.ceil(rule.retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Scope": "global" if rule.is_global else "user",
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.is_global,
        }
        return self._json(body, 429, headers)

    async def _read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return {}
        return json.loads(raw)

    async def _read_message_body(
        self, request: web.Request
    ) -> tuple[dict[str, Any], list[SentFile]]:
        """Parse a JSON or multipart (``payload_json`` + ``files[n]``) message body."""
        if not request.content_type.startswith("multipart/"):
            body = await self._read_json(request)
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
            return body, []
        payload: dict[str, Any] = {}
        files: list[SentFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not hasattr(part, "read"):
                continue
            data = await part.read(decode=False)  # type: ignore[union-attr]
            if part.name == "payload_json":
                payload = json.loads(data)
            elif part.name and part.name.startswith("files["):
                content_type = part.headers.get("Content-Type")  # type: ignore[union-attr]
                files.append(SentFile(part.filename or "file.bin", bytes(data), content_type))
        return payload, files

    def _check_message(
        self,
        payload: dict[str, Any],
        files: list[SentFile],
        *,
        existing: dict[str, Any] | None = None,
    ) -> web.Response | None:
        """Discord's validation subset: length, type, emptiness, embed count."""
        content = payload.get("content")
        if content is not None and not isinstance(content, str):
            return self._invalid_form(
                {"content": self._field_error("BASE_TYPE_STRING", "Must be a string.")}
            )
        if isinstance(content, str) and len(content) > MAX_MESSAGE_LENGTH:
            return self._invalid_form(
                {
                    "content": self._field_error(
                        "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_MESSAGE_LENGTH} or fewer in length."
                    )
                }
            )
        embeds = payload.get("embeds") or []
        if len(embeds) > 10:
            return self._invalid_form(
                {
                    "embeds": self._field_error(
                        "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."
                    )
                }
            )
        merged = {**(existing or {}), **payload}
        has_body = bool(
            merged.get("content")
            or merged.get("embeds")
            or files
            or merged.get("attachments")
            or merged.get("sticker_ids")
            or merged.get("components")
            or merged.get("poll")
        )
        if not has_body:
            return self._error(400, 50006, "Cannot send an empty message")
        return None

    # ------------------------------------------------------------------ REST handlers

    async def _get_gateway(self, request: web.Request, match: re.Match[str]) -> web.Response:
        return self._json({"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, request: web.Request, match: re.Match[str]) -> web.Response:
        return self._json(
            {
                "url": self.gateway_url.rstrip("/"),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000 - self.identifies,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_me(self, request: web.Request, match: re.Match[str]) -> web.Response:
        return self._json(
            {**self._bot.payload(), "verified": True, "mfa_enabled": False, "locale": "en-US"}
        )

    async def _get_user(self, request: web.Request, match: re.Match[str]) -> web.Response:
        user = self._users.get(int(match[1]))
        if user is None:
            return self._error(404, 10013, "Unknown User")
        return self._json(user.payload())

    async def _get_application(self, request: web.Request, match: re.Match[str]) -> web.Response:
        owner = next((u for u in self._users.values() if not u.bot), _User(1, "owner"))
        return self._json(
            {
                "id": str(self.app_id),
                "name": self._bot.username,
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self._bot.payload(),
                "owner": owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": (1 << 19)
                | (1 << 15)
                | (1 << 13),  # *_LIMITED message content/members/presence
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": len(self._guilds),
            }
        )

    async def _create_dm(self, request: web.Request, match: re.Match[str]) -> web.Response:
        try:
            body = await self._read_json(request)
            recipient_id = int(body["recipient_id"])
        except (ValueError, KeyError, TypeError):
            return self._invalid_form(
                {"recipient_id": self._field_error("BASE_TYPE_REQUIRED", "This field is required")}
            )
        if recipient_id not in self._users or recipient_id == self.bot_id:
            return self._error(400, 50033, "Invalid Recipient(s)")
        existing = self.dm_channel_for(recipient_id)
        if existing is None:
            channel = _Channel(self._ids.next(), ChannelType.DM, recipient_id=recipient_id)
            self._channels[channel.id] = channel
        else:
            channel = self._channels[existing]
        return self._json(self._channel_payload(channel))

    async def _get_channel(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel = self._channels.get(int(match[1]))
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        return self._json(self._channel_payload(channel))

    def _own_message(self, match: re.Match[str]) -> tuple[_Channel | None, dict[str, Any] | None]:
        channel = self._channels.get(int(match[1]))
        message = self._messages.get(int(match[2]))
        if message is not None and int(message["channel_id"]) != int(match[1]):
            message = None
        return channel, message

    async def _post_message(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel = self._channels.get(int(match[1]))
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        try:
            payload, files = await self._read_message_body(request)
        except ValueError:
            return self._error(400, 50109, "The request body contains invalid JSON.")
        problem = self._check_message(payload, files)
        if problem is not None:
            return problem
        reference = payload.get("message_reference")
        reply_to: int | None = None
        if isinstance(reference, dict) and reference.get("message_id"):
            reply_to = int(reference["message_id"])
            if reply_to not in self._messages and reference.get("fail_if_not_exists", True):
                return self._invalid_form(
                    {
                        "message_reference": self._field_error(
                            "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                        )
                    }
                )
            reference = {
                "message_id": str(reply_to),
                "channel_id": str(reference.get("channel_id") or channel.id),
                **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
            }
        else:
            reference = None
        attachments = [
            self._attachment(
                channel.id, {"filename": f.filename, "data": f.data, "content_type": f.content_type}
            )
            for f in files
        ]
        message = self._message_payload(
            channel,
            self._bot,
            payload.get("content") or "",
            attachments=attachments,
            embeds=payload.get("embeds") or [],
            reference=reference,
        )
        sent = SentMessage(
            channel_id=channel.id,
            message_id=int(message["id"]),
            content=message["content"],
            guild_id=channel.guild_id,
            thread_parent_id=channel.parent_id if channel.is_thread else None,
            reply_to=reply_to,
            files=files,
            embeds=list(message["embeds"]),
            payload=payload,
        )
        self.sent.append(sent)
        self._sent_by_id[sent.message_id] = sent
        if self.echo_bot_messages:
            await self._dispatch_all("MESSAGE_CREATE", message)
        return self._json(message)

    async def _get_message(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel, message = self._own_message(match)
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        if message is None:
            return self._error(404, 10008, "Unknown Message")
        return self._json(message)

    async def _edit_message(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel, message = self._own_message(match)
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        if message is None:
            return self._error(404, 10008, "Unknown Message")
        if int(message["author"]["id"]) != self.bot_id:
            return self._error(403, 50005, "Cannot edit a message authored by another user")
        try:
            payload, files = await self._read_message_body(request)
        except ValueError:
            return self._error(400, 50109, "The request body contains invalid JSON.")
        problem = self._check_message(payload, files, existing=message)
        if problem is not None:
            return problem
        if "content" in payload:
            message["content"] = payload["content"] or ""
        if "embeds" in payload:
            message["embeds"] = payload["embeds"] or []
        if "attachments" in payload or files:
            keep = {str(a.get("id")) for a in payload.get("attachments") or []}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep]
            message["attachments"] += [
                self._attachment(channel.id, {"filename": f.filename, "data": f.data})
                for f in files
            ]
        message["edited_timestamp"] = _now_iso()
        sent = self._sent_by_id.get(int(message["id"]))
        if sent is not None:
            sent.edits.append(message["content"])
        if self.echo_bot_messages:
            await self._dispatch_all("MESSAGE_UPDATE", message)
        return self._json(message)

    async def _delete_message(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel, message = self._own_message(match)
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        if message is None:
            return self._error(404, 10008, "Unknown Message")
        del self._messages[int(message["id"])]
        sent = self._sent_by_id.get(int(message["id"]))
        if sent is not None:
            sent.deleted = True
        event = {"id": message["id"], "channel_id": message["channel_id"]}
        if "guild_id" in message:
            event["guild_id"] = message["guild_id"]
        if self.echo_bot_messages:
            await self._dispatch_all("MESSAGE_DELETE", event)
        return web.Response(status=204)

    async def _react(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel, message = self._own_message(match)
        if channel is None or message is None:
            return self._error(404, 10008, "Unknown Message")
        self.reactions.append((channel.id, int(message["id"]), match[3]))
        return web.Response(status=204)

    async def _unreact(self, request: web.Request, match: re.Match[str]) -> web.Response:
        key = (int(match[1]), int(match[2]), match[3])
        if key in self.reactions:
            self.reactions.remove(key)
        return web.Response(status=204)

    async def _typing(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel_id = int(match[1])
        if channel_id not in self._channels:
            return self._error(404, 10003, "Unknown Channel")
        self.typing.append(channel_id)
        return web.Response(status=204)

    def _check_thread_name(self, body: dict[str, Any]) -> web.Response | None:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            return self._invalid_form(
                {
                    "name": self._field_error(
                        "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
                }
            )
        return None

    async def _announce_thread(self, thread: _Channel, starter: int | None) -> web.Response:
        payload = self._channel_payload(thread)
        info = ThreadInfo(
            thread.id,
            thread.parent_id or 0,
            thread.guild_id or 0,
            thread.name or "",
            thread.type,
            thread.owner_id or self.bot_id,
            starter,
            payload,
        )
        self.threads.append(info)
        if starter is not None:
            sent = self._sent_by_id.get(starter)
            if sent is not None:
                sent.thread = info
            starter_message = self._messages.get(starter)
            if starter_message is not None:
                starter_message["thread"] = payload
                starter_message["flags"] = starter_message.get("flags", 0) | 32  # HAS_THREAD
        await self._dispatch_all("THREAD_CREATE", {**payload, "newly_created": True})
        return self._json(payload, 201)

    async def _thread_from_message(
        self, request: web.Request, match: re.Match[str]
    ) -> web.Response:
        channel, message = self._own_message(match)
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        if message is None:
            return self._error(404, 10008, "Unknown Message")
        if channel.type != ChannelType.GUILD_TEXT:
            return self._error(400, 50024, "Cannot execute action on this channel type")
        if int(message["id"]) in self._channels:
            return self._error(400, 160004, "A thread has already been created for this message")
        body = await self._read_json(request)
        problem = self._check_thread_name(body)
        if problem is not None:
            return problem
        guild = self._guilds[channel.guild_id or 0]
        thread = self._create_thread(
            guild,
            channel.id,
            body["name"],
            ChannelType.PUBLIC_THREAD,
            self.bot_id,
            thread_id=int(message["id"]),
        )
        return await self._announce_thread(thread, int(message["id"]))

    async def _thread_without_message(
        self, request: web.Request, match: re.Match[str]
    ) -> web.Response:
        channel = self._channels.get(int(match[1]))
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        if channel.type != ChannelType.GUILD_TEXT:
            return self._error(400, 50024, "Cannot execute action on this channel type")
        body = await self._read_json(request)
        problem = self._check_thread_name(body)
        if problem is not None:
            return problem
        thread_type = int(body.get("type") or ChannelType.PRIVATE_THREAD)
        guild = self._guilds[channel.guild_id or 0]
        thread = self._create_thread(guild, channel.id, body["name"], thread_type, self.bot_id)
        return await self._announce_thread(thread, None)

    async def _join_thread(self, request: web.Request, match: re.Match[str]) -> web.Response:
        channel = self._channels.get(int(match[1]))
        if channel is None or not channel.is_thread:
            return self._error(404, 10003, "Unknown Channel")
        return web.Response(status=204)

    def _command_scope(self, match: re.Match[str]) -> tuple[web.Response | None, int | None]:
        if int(match[1]) != self.app_id:
            return self._error(403, 50001, "Missing Access"), None
        guild_id = int(match[2]) if match.lastindex and match.lastindex >= 2 else None
        if guild_id is not None and guild_id not in self._guilds:
            return self._error(403, 50001, "Missing Access"), None
        return None, guild_id

    async def _get_commands(self, request: web.Request, match: re.Match[str]) -> web.Response:
        problem, guild_id = self._command_scope(match)
        if problem is not None:
            return problem
        if guild_id is None:
            return self._json(self._global_commands)
        return self._json(self._guild_commands.get(guild_id, []))

    async def _put_commands(self, request: web.Request, match: re.Match[str]) -> web.Response:
        problem, guild_id = self._command_scope(match)
        if problem is not None:
            return problem
        try:
            body = await self._read_json(request)
        except ValueError:
            return self._error(400, 50109, "The request body contains invalid JSON.")
        if not isinstance(body, list):
            return self._invalid_form(
                {"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]}
            )
        errors: dict[str, Any] = {}
        for index, command in enumerate(body):
            name = command.get("name") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[-_\w]{1,32}", name):
                errors[str(index)] = {
                    "name": self._field_error(
                        "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                    )
                }
        if errors:
            return self._invalid_form(errors)
        previous = (
            self._global_commands if guild_id is None else self._guild_commands.get(guild_id, [])
        )
        known = {(c["name"], c.get("type", 1)): c["id"] for c in previous}
        stored = []
        for command in body:
            kind = command.get("type", 1)
            entry = {
                "default_member_permissions": None,
                "nsfw": False,
                "description": "",
                **command,
                "id": known.get((command["name"], kind)) or str(self._ids.next()),
                "application_id": str(self.app_id),
                "type": kind,
                "version": str(self._ids.next()),
            }
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        if guild_id is None:
            self.commands_payloads.append(copy.deepcopy(body))
            self._global_commands = stored
        else:
            self.guild_commands_payloads.append((guild_id, copy.deepcopy(body)))
            self._guild_commands[guild_id] = stored
        return self._json(stored)

    async def _cdn(self, request: web.Request) -> web.Response:
        stored = self._files.get(int(request.match_info["attachment"]))
        if stored is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = stored
        return web.Response(body=data, content_type=content_type or "application/octet-stream")


@contextlib.contextmanager
def patch_discord(fake: FakeDiscord) -> Iterator[FakeDiscord]:
    """Point discord.py at ``fake`` (REST base + default gateway) and restore afterwards.

    Both are process-wide class attributes, so use it around one test at a time. Start the
    fake first: the URLs embed its port.
    """
    from discord.gateway import DiscordWebSocket
    from discord.http import Route
    from yarl import URL

    if not fake.port:
        raise RuntimeError("start the FakeDiscord before patching discord.py")
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.rest_base
    DiscordWebSocket.DEFAULT_GATEWAY = URL(fake.gateway_url)
    try:
        yield fake
    finally:
        Route.BASE = old_base
        DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
