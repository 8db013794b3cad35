"""Signal as a gateway platform, through signal-cli-rest-api (bbernhard) in json-rpc mode.

Connection (the shared :class:`~hermes_gateway.platforms.connection.ConnectionLoop`): each
session asks ``/v1/about`` (the API must run with ``MODE=json-rpc``, else the receive
websocket does not exist: a fatal error saying so) and ``/v1/accounts`` (SIGNAL_ACCOUNT must be
registered there: fatal otherwise, naming it), then opens the websocket
``/v1/receive/<account>`` and reads envelopes until it closes; the loop reconnects with the
shared backoff, shown live. A frame delivered twice (signal-cli may repeat around a
reconnect) is taken once (author + timestamp), and the inbox drops what it already has.

Out: ``POST /v2/send`` to the sender or ``group.<id>``, plain text (Markdown stripped; Signal's
own styles are not used), split at 8000 characters; files named by ``MEDIA:`` lines go as
attachments (only from the chat's workspace); the typing indicator while a turn runs. The API
can edit a sent message (``edit_timestamp``) and delete it remotely, but Signal clients show
at most ten edits of a message, so answers are sent once, complete, not streamed by edits.

signal-cli in json-rpc mode hands each envelope to the websocket clients connected at that
moment: what arrives while the gateway is down is not kept by the REST API. Messages stored by
the gateway before a stop are answered after the next start.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config
from hermes_gateway.delivery import DeliveryError, RateGate, split_message
from hermes_gateway.delivery.answer_turn import AnswerTurns
from hermes_gateway.delivery.plain_text import markdown_to_plain
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, SessionSource
from hermes_gateway.platforms.base import (
    FatalPlatformError,
    FinalOnlyDelivery,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.platforms.chat_locks import ChatLocks
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.signal.api import SignalApi, SignalApiError
from hermes_gateway.platforms.signal.inbound import Incoming, SignalInbound
from hermes_gateway.tasks import TaskSet

__all__ = ["TEXT_LIMIT", "SignalAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 20.0
TEXT_LIMIT = 8000
"""Characters per message (signal-cli sends longer texts as a long-text attachment)."""
TYPING_REFRESH = 10.0
"""Signal clients show "typing" for about 15 s per indicator."""
HEARTBEAT = 30.0
"""Websocket ping interval: a silent dead connection is noticed within about a minute."""


class SignalAdapter(PlatformAdapter):
    """Signal DMs and groups."""

    name = "signal"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg = cfg = config.platforms.signal
        self.policy = policy
        self.api = SignalApi(cfg.http_url, cfg.account, cfg.backoff_initial)
        self.gate = RateGate(cfg.rate_interval)
        self.inbound = SignalInbound(cfg, self.name)
        self.link = ConnectionLoop(
            self,
            "Signal",
            Backoff(cfg.reconnect_initial, cfg.reconnect_cap, jitter=0.2, upward=True),
            describe=_describe,
        )
        self.connections = 0
        """Websocket connections opened (for tests and the log)."""
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.answers = AnswerTurns(
            self.name,
            config.paths.home,
            upload=self._upload,
            typing=self._typing,
            typing_every=TYPING_REFRESH,
        )
        self._locks = ChatLocks()
        self._tasks = TaskSet("signal")

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.cfg.http_url:
            raise FatalPlatformError("SIGNAL_HTTP_URL is not set")
        if not self.cfg.account:
            raise FatalPlatformError("SIGNAL_ACCOUNT is not set")
        if self.gate.closed:
            self.gate = RateGate(self.cfg.rate_interval)
        await self.link.start(
            self._session, wait=START_WAIT, waiting="waiting for signal-cli-rest-api"
        )

    async def stop(self) -> None:
        self.answers.cancel()
        await self.link.stop()
        await self._tasks.cancel_all(timeout=5)
        await self.gate.aclose()
        await self.api.close()
        self.link.set_state("stopped")

    async def _check(self) -> None:
        try:
            about = await self.api.about()
            accounts = await self.api.accounts()
        except SignalApiError as exc:
            raise FatalPlatformError(
                f"signal-cli-rest-api at SIGNAL_HTTP_URL answered {exc.status} ({exc.message})"
            ) from exc
        mode = str(about.get("mode", ""))
        if mode and mode != "json-rpc":
            raise FatalPlatformError(
                f"signal-cli-rest-api runs in MODE={mode}; Hermes needs MODE=json-rpc (its "
                "websocket receive). Restart the container with MODE=json-rpc"
            )
        if self.cfg.account not in accounts:
            known = ", ".join(accounts) or "none"
            raise FatalPlatformError(
                f"SIGNAL_ACCOUNT {self.cfg.account} is not registered with signal-cli-rest-api "
                f"(registered: {known})"
            )

    async def _session(self) -> str:
        """Check the API, then read the receive websocket until it closes."""
        await self._check()
        async with self.api.session.ws_connect(self.api.receive_url, heartbeat=HEARTBEAT) as ws:
            self._ws = ws
            self.connections += 1
            self.link.connected(f"as {self.cfg.account}")
            try:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        self._on_frame(msg.data)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
            finally:
                self._ws = None
        return "the receive websocket closed"

    # --- inbound ------------------------------------------------------------------------

    def _on_frame(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("an unreadable frame from signal-cli-rest-api was skipped")
            return
        if not isinstance(frame, dict):
            return
        if "error" in frame and "envelope" not in frame:
            log.warning("signal-cli-rest-api reported: %s", frame.get("error"))
            return
        try:
            incoming = self.inbound.parse(frame)
        except Exception:
            log.exception("a Signal envelope could not be read")
            return
        if incoming is not None:
            self._spawn(self._handle(incoming))

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro, name="signal-envelope")

    async def _handle(self, incoming: Incoming) -> None:
        event = incoming.event
        async with self._locks.of(event.source.chat_id):  # a chat's messages in arrival order
            try:
                if incoming.attachments and self.policy.allowlisted(event.source):
                    event.media = await self._save_attachments(incoming)
                await self.dispatch(event)
            except Exception:
                log.exception("Signal message %s could not be handled", event.message_id)

    async def _save_attachments(self, incoming: Incoming) -> list[MediaRef]:
        refs: list[MediaRef] = []
        for att in incoming.attachments:
            try:
                data = await self.api.attachment(att.attachment_id)
            except DeliveryError as exc:
                log.warning("could not download Signal attachment: %s", exc)
                continue
            refs.append(
                await save_media(
                    self.config.paths.media_dir,
                    data,
                    platform=self.name,
                    unique_id=att.attachment_id,
                    file_name=att.file_name,
                    mime_type=att.content_type,
                )
            )
        return refs

    # --- delivery -----------------------------------------------------------------------

    async def send(self, source: SessionSource, text: str) -> None:
        to = source.chat_id
        for chunk in split_message(markdown_to_plain(text), TEXT_LIMIT):
            await self.gate.run(to, functools.partial(self.api.send, to, chunk))

    async def send_file(self, source: SessionSource, path: str | Path, caption: str = "") -> None:
        await self._upload(source.chat_id, Path(path), caption)

    async def _upload(self, to: str, path: Path, caption: str = "") -> None:
        await self.gate.run(to, lambda: self.api.send(to, caption, attachments=[path]))

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        return self.answers.around(FinalOnlyDelivery(self, source), source, source.chat_id)

    async def send_typing(self, source: SessionSource) -> None:
        await self._typing(source.chat_id)

    async def _typing(self, to: str) -> None:
        try:
            await self.api.typing(to)
        except DeliveryError as exc:
            log.debug("Signal typing indicator for %s failed: %s", to, exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"signal-cli-rest-api refused the receive websocket ({exc.status})"
    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError | DeliveryError):
        return f"cannot reach signal-cli-rest-api: {exc or type(exc).__name__}"
    return str(exc) or type(exc).__name__
