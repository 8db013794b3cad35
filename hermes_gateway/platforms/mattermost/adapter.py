"""Mattermost as a gateway platform: REST API v4 and the websocket, inside our event loop.

The adapter does what every adapter does and nothing more: it keeps a connection, turns
posts into :class:`~hermes_gateway.models.MessageEvent`, and delivers answers. Its parts:

* :mod:`.api`: the REST calls over one aiohttp session, errors mapped to delivery errors;
* :mod:`.connection`: one websocket connection (challenge, ``hello``, sequence numbers);
* :mod:`.inbound`: which posts are for the bot, session sources, text cleanup;
* :mod:`.transport`: send / patch / upload / typing for the shared streaming code.

Connection. A watcher task checks the token (``GET /users/me``: a 401 is fatal, reported
once, naming MATTERMOST_TOKEN), reads the post size limit, and runs the websocket; when it
drops, the shared :class:`~hermes_gateway.backoff.Backoff` paces the next attempt and the
Platforms pane shows "reconnecting" with the delay. Posts written while the websocket was
down (or lost in a sequence gap) are fetched with ``GET /channels/{id}/posts?since=`` on
the next ``hello``; post ids already taken are skipped, so nothing is answered twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config
from hermes_gateway.delivery import DeliveryError, RateGate
from hermes_gateway.delivery.answer_turn import AnswerTurns
from hermes_gateway.delivery.gated_send import send_file_gated, send_gated
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, SessionSource
from hermes_gateway.platforms.base import FatalPlatformError, PlatformAdapter, TurnDelivery
from hermes_gateway.platforms.chat_locks import ChatLocks
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.mattermost.api import ApiError, MattermostApi
from hermes_gateway.platforms.mattermost.connection import (
    ConnectionLost,
    WebsocketEvent,
    run_websocket,
)
from hermes_gateway.platforms.mattermost.inbound import (
    Directory,
    MattermostInbound,
    PostContext,
    event_context,
)
from hermes_gateway.platforms.mattermost.transport import MattermostTransport, target_for
from hermes_gateway.tasks import TaskSet

__all__ = ["CATCH_UP_MARGIN_MS", "PER_CHANNEL_INTERVAL", "MattermostAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 30.0
"""How long start() waits for the first ``hello`` before returning anyway (still connecting)."""
PER_CHANNEL_INTERVAL = 0.05
"""Minimum spacing of writes in one channel; the server's own limit (when its rate limiting
is on, 10 requests/s per user by default) answers 429s, which the gate waits out."""
MAX_INBOUND_BYTES = 25 * 1024 * 1024
"""Attachments larger than this are not downloaded (a chat bot has no use for more)."""
CATCH_UP_MARGIN_MS = 5_000
"""The catch-up asks for a little more than strictly missed (clock skew between events);
post ids already taken are skipped."""
OFFLINE_CATCH_UP_MS = 24 * 3600 * 1000
"""After a restart, posts written while the gateway was off are answered if they are at most
this old (a day): older questions are stale, and the inbox recognises a week of answered ids."""
WATERMARK_SAVE_EVERY = 1.0
"""Seconds between two writes of the watermark to the store (not one write per post)."""
TYPING_REFRESH = 4.0
"""Mattermost shows "typing" for about 5 s per request."""


class MattermostAdapter(PlatformAdapter):
    """Mattermost DMs, group messages, channels and threads.

    Args:
        config: The gateway configuration (``config.platforms.mattermost`` is used).
        policy: Who may talk; consulted here only to follow threads and save attachments
            (the runner makes the real decision).
    """

    name = "mattermost"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg = cfg = config.platforms.mattermost
        self.policy = policy
        self.api = MattermostApi(cfg.url, cfg.token)
        self.transport = MattermostTransport(self.api)
        self.gate = RateGate(PER_CHANNEL_INTERVAL)
        self.inbound = MattermostInbound(cfg, policy, self._save_files)
        self.directory = Directory(self.api.channel, self.api.user)
        self.since_ms: int | None = None
        """Newest ``create_at`` taken; the catch-up after a reconnect starts here."""
        self.catch_ups = 0
        """Catch-ups run (after reconnects and sequence gaps), for tests and the log."""
        self.link = ConnectionLoop(
            self,
            "Mattermost",
            Backoff(self.cfg.reconnect_initial, self.cfg.reconnect_cap, jitter=0.2, upward=True),
            describe=_describe,
        )
        self.answers = AnswerTurns(
            self.name,
            config.paths.home,
            upload=self._upload,
            typing=self.transport.typing,
            typing_every=TYPING_REFRESH,
            pacing=cfg,
            display=config.display,
        )
        self._chat_locks = ChatLocks()
        self._tasks = TaskSet("mattermost")
        self._saving: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[None] | None = None
        self._deferred: list[tuple[dict[str, Any], PostContext]] = []
        """Live posts that came while a catch-up ran: taken after it, so order holds."""

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.cfg.url:
            raise FatalPlatformError("MATTERMOST_URL is not set")
        if not self.cfg.token:
            raise FatalPlatformError("MATTERMOST_TOKEN is not set")
        if self.gate.closed:
            self.gate = RateGate(PER_CHANNEL_INTERVAL)
        await self.link.start(
            self._session, wait=START_WAIT, waiting="waiting for the Mattermost websocket"
        )

    async def stop(self) -> None:
        self.answers.cancel()
        await self.link.stop()
        await self._tasks.cancel_all(timeout=5)
        await self._save_watermark()
        await self.gate.aclose()
        await self.api.close()
        self.link.set_state("stopped")

    async def _login(self) -> None:
        """Check the token and learn who the bot is; a refused token is fatal."""
        try:
            me = await self.api.me()
        except ApiError as exc:
            if exc.status in (401, 403):
                raise FatalPlatformError(
                    f"Mattermost rejected MATTERMOST_TOKEN ({exc.status}: {exc.message}); "
                    "check MATTERMOST_TOKEN"
                ) from exc
            raise
        self.inbound.bot_id = str(me.get("id", ""))
        self.inbound.bot_name = str(me.get("username", ""))
        self.transport.limit = self.cfg.post_limit or await self.api.post_limit()

    async def _session(self) -> str:
        """Log in and run the websocket until it ends; the link backs off and reconnects."""
        await self._login()
        await run_websocket(
            self.api.session,
            self.api.websocket_url,
            self.cfg.token,
            on_hello=self._on_hello,
            on_event=self._on_event,
            on_gap=self._on_gap,
        )
        return "the websocket ended"

    async def _on_hello(self, event: WebsocketEvent) -> None:
        self.link.connected(f"as @{self.inbound.bot_name}")
        if self.since_ms is None:
            now = int(time.time() * 1000)
            stored = await self._load_watermark()
            self.since_ms = max(stored, now - OFFLINE_CATCH_UP_MS) if stored else now
            if stored:
                self._start_catch_up()  # what was written while the gateway was off
            else:
                self._spawn(self._save_watermark())
        else:
            self._start_catch_up()

    # --- the watermark: where the next catch-up starts, kept across restarts ---------------

    def _watermark_key(self) -> str:
        return f"mattermost:{self.inbound.bot_id}:since_ms"

    async def _load_watermark(self) -> int:
        if not self.bound:
            return 0
        try:
            raw = await self.host.store.kv_get(self._watermark_key())
            return int(raw) if raw else 0
        except (ValueError, OSError, RuntimeError) as exc:
            log.warning("could not read the Mattermost watermark: %s", exc)
            return 0

    async def _save_watermark(self) -> None:
        if not self.bound or self.since_ms is None or not self.inbound.bot_id:
            return
        try:
            await self.host.store.kv_set(self._watermark_key(), str(self.since_ms))
        except Exception as exc:  # a full disk must not stop the chat
            log.warning("could not save the Mattermost watermark: %s", exc)

    async def _save_soon(self) -> None:
        await asyncio.sleep(WATERMARK_SAVE_EVERY)
        await self._save_watermark()

    def _advance(self, created: int) -> None:
        if self.since_ms is None or created > self.since_ms:
            self.since_ms = created
            if self._saving is None or self._saving.done():
                self._saving = self._spawn(self._save_soon())

    def _on_gap(self, expected: int, got: int) -> None:
        log.info("Mattermost events %d..%d were lost; fetching recent posts", expected, got - 1)
        if self.since_ms is not None:
            self._start_catch_up()

    def _start_catch_up(self) -> None:
        if self._catching_up is None or self._catching_up.done():
            assert self.since_ms is not None
            self._catching_up = self._spawn(self._catch_up(self.since_ms))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name="mattermost-post")

    # --- inbound ------------------------------------------------------------------------

    def _on_event(self, event: WebsocketEvent) -> None:
        if event.event != "posted":
            return
        raw = event.data.get("post")
        try:
            post = json_object(raw)
        except ValueError:
            log.warning("a posted event carried no readable post")
            return
        if self._catching_up is not None and not self._catching_up.done():
            self._deferred.append((post, event_context(event.data)))
            return
        self._take(post, event_context(event.data))

    def _take(self, post: dict[str, Any], ctx: PostContext | None) -> None:
        """Take a post once (whichever road it came by) and handle it in its channel's order."""
        post_id = str(post.get("id", ""))
        if not post_id or not self.inbound.first_time(post_id):
            return
        created = post.get("create_at")
        if isinstance(created, int):
            self._advance(created)
        self._spawn(self._handle(post, ctx))

    async def _handle(self, post: dict[str, Any], ctx: PostContext | None) -> None:
        async with self._chat_locks.of(str(post.get("channel_id", ""))):
            try:
                if ctx is None:
                    ctx = await self.directory.context(post)
                event = await self.inbound.normalize(post, ctx)
                if event is not None:
                    await self.dispatch(event)
            except DeliveryError as exc:
                log.warning("could not look up post %s: %s", post.get("id"), exc)
            except Exception:
                log.exception("Mattermost post %s could not be handled", post.get("id"))

    async def _catch_up(self, since_ms: int) -> None:
        """Take the posts written while events were not arriving (each one only once), then
        the live ones that came meanwhile, so a channel's posts keep their order."""
        self.catch_ups += 1
        try:
            await self._fetch_missed(since_ms)
        finally:
            deferred, self._deferred = self._deferred, []
            for post, ctx in deferred:
                self._take(post, ctx)

    async def _fetch_missed(self, since_ms: int) -> None:
        since = max(0, since_ms - CATCH_UP_MARGIN_MS)
        try:
            channels = await self.api.my_channels()
        except DeliveryError as exc:
            log.warning("could not list channels to catch up: %s", exc)
            channels = []
        for chan in channels:
            self.directory.remember(chan)
        ids = {str(c["id"]) for c in channels} | set(self.directory.channels)
        for channel_id in sorted(ids):
            try:
                posts = await self.api.posts_since(channel_id, since)
            except DeliveryError as exc:
                log.warning("could not fetch missed posts of %s: %s", channel_id, exc)
                continue
            for post in posts:
                if int(post.get("create_at", 0)) >= since and not post.get("delete_at"):
                    self._take(post, None)

    async def _save_files(self, file_ids: list[str]) -> list[MediaRef]:
        """Download a user's files into HERMES_HOME/media (only asked for allowed users)."""
        refs: list[MediaRef] = []
        for file_id in file_ids:
            try:
                info = await self.api.file_info(file_id)
                if int(info.get("size", 0)) > MAX_INBOUND_BYTES:
                    log.info("file %s is too large", file_id)
                    continue
                data = await self.api.download(file_id, MAX_INBOUND_BYTES)
            except DeliveryError as exc:
                log.warning("could not download file %s: %s", file_id, exc)
                continue
            refs.append(
                await save_media(
                    self.config.paths.media_dir,
                    data,
                    platform=self.name,
                    unique_id=file_id,
                    file_name=str(info.get("name") or file_id),
                    mime_type=str(info.get("mime_type") or "") or None,
                )
            )
        return refs

    # --- delivery -----------------------------------------------------------------------

    @staticmethod
    def target(source: SessionSource) -> str:
        """Where answers go: the channel, or the thread under its root post."""
        return target_for(source.chat_id, source.thread_id)

    async def send(self, source: SessionSource, text: str) -> None:
        await send_gated(self.gate, self.transport, self.target(source), text)

    async def send_file(self, source: SessionSource, path: str | Path, caption: str = "") -> None:
        """Upload a file into the chat (``POST /files``, then a post carrying it)."""
        await send_file_gated(self.gate, self.transport, self.target(source), Path(path), caption)

    async def _upload(self, target: str, path: Path) -> None:
        await send_file_gated(self.gate, self.transport, target, path)

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        return self.answers.streamed(self.transport, self.gate, source, self.target(source))

    async def send_typing(self, source: SessionSource) -> None:
        await self.transport.typing(self.target(source))


def json_object(raw: Any) -> dict[str, Any]:
    """The post inside a ``posted`` event: a JSON object serialised into a string field."""
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _describe(exc: BaseException) -> str:
    """Why a Mattermost connection ended, in the words the Platforms pane shows."""
    if isinstance(exc, ConnectionLost):
        return str(exc)
    if isinstance(exc, ApiError):
        return f"Mattermost answered {exc.status} ({exc.message})"
    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
        return f"cannot reach Mattermost: {exc or type(exc).__name__}"
    return str(exc) or type(exc).__name__
