"""WhatsApp through Meta's Cloud API as a gateway platform.

In: Meta calls our webhook (WHATSAPP_CLOUD_WEBHOOK_PATH, ``/whatsapp/webhook``): ``GET`` for
the subscription handshake (``hub.verify_token`` must be WHATSAPP_CLOUD_VERIFY_TOKEN, then
``hub.challenge`` is echoed), ``POST`` for notifications, which must carry
``X-Hub-Signature-256`` keyed by WHATSAPP_CLOUD_APP_SECRET: a missing or forged one is 403 and
nothing in it is read. The messages of a notification are stored by the runner
(``host.receive``) before Meta gets its 200; Meta redelivers anything not acknowledged (for
days), and the wamid as message id lets the inbox drop what it already has. Media come by
the Graph media URL, downloaded only for allowed users.

Out: text (Markdown turned into WhatsApp's ``*bold*``/``_italic_``, split at 4096
characters), files named by ``MEDIA:`` lines (uploaded, only from the chat's workspace), the
read receipt and typing indicator in one call when a turn starts. Free-form messages are only
allowed within 24 hours of the user's last message: outside it we do not call Meta at all,
and Meta's own refusal (131047) is the same :class:`WindowClosed`, never retried; either way
the delivery fails with a message saying why, which the gateway logs and shows.

The webhook is served by the API server when it runs and WHATSAPP_CLOUD_WEBHOOK_PORT is not
set; otherwise on its own listener (WHATSAPP_CLOUD_WEBHOOK_HOST, default 0.0.0.0, and port
8090: Hermes Agent's defaults; Meta must reach it).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import mimetypes
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import Config
from hermes_gateway.delivery import DeliveryError, RateGate, split_message
from hermes_gateway.delivery.answer_turn import AnswerTurns
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, SessionSource
from hermes_gateway.platforms.base import (
    FatalPlatformError,
    FinalOnlyDelivery,
    IntakeError,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.platforms.chat_locks import ChatLocks
from hermes_gateway.platforms.http_read import TooLarge, read_limited
from hermes_gateway.platforms.web_routes import OwnSite, WebhookListener
from hermes_gateway.platforms.whatsapp.format import TEXT_LIMIT, markdown_to_whatsapp
from hermes_gateway.platforms.whatsapp.graph import (
    WINDOW_CLOSED,
    GraphApi,
    GraphAuthError,
    GraphError,
    WindowClosed,
)
from hermes_gateway.platforms.whatsapp.inbound import Incoming, parse_notification
from hermes_gateway.platforms.whatsapp.signature import valid_signature, verify_challenge
from hermes_gateway.tasks import TaskSet

__all__ = ["DEFAULT_PORT", "WINDOW_SECONDS", "WhatsAppAdapter"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8090
"""Hermes Agent's WHATSAPP_CLOUD_WEBHOOK_PORT default."""
MAX_NOTIFICATION_BYTES = 3 * 1024 * 1024
"""Meta's documented largest webhook payload."""
WINDOW_SECONDS = 24 * 3600
"""The customer-service window: free-form messages up to 24 h after the user's last one."""
RECEIVE_WAIT = 10.0
"""Seconds a webhook waits for its messages to be stored before answering anyway."""
TYPING_REFRESH = 20.0
"""The indicator shows for up to 25 s (or until we answer)."""
_KV = "whatsapp:window:"
WINDOW_SAVE_STEP = 300.0
"""The stored window start is renewed at most every 5 minutes of a chat (not one write per
message); after a restart the window may look up to that much older, so an answer is never
sent that Meta would refuse, only one it might still have taken is held back."""


class WhatsAppAdapter(PlatformAdapter):
    """WhatsApp Business Cloud API: one DM session per user (wa_id)."""

    name = "whatsapp"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg = cfg = config.platforms.whatsapp
        self.policy = policy
        self.api = GraphApi(
            cfg.graph_base, cfg.api_version, cfg.phone_number_id, cfg.token, cfg.backoff_initial
        )
        self.gate = RateGate(cfg.rate_interval)
        self.listener = WebhookListener(
            self.name, "WhatsApp", "WHATSAPP_CLOUD_WEBHOOK_PORT", self.report
        )
        self._display = cfg.phone_number_id
        self.refused = 0
        """Notifications refused for a missing or wrong signature."""
        self.window_refusals = 0
        """Answers not sent because the 24-hour window was closed."""
        self._last_seen: dict[str, float] = {}
        """wa_id -> when the user last wrote (the window's start)."""
        self._saved: dict[str, float] = {}
        """wa_id -> the window start last written to the store."""
        self._last_wamid: dict[str, str] = {}
        """wa_id -> the user's latest message (read receipts and typing attach to it)."""
        self.answers = AnswerTurns(
            self.name,
            config.paths.home,
            upload=self._upload,
            typing=self._typing,
            typing_every=TYPING_REFRESH,
        )
        self._tasks = TaskSet("whatsapp")
        """Waits for the API server when the webhook rides on it (see web_routes)."""
        self._locks = ChatLocks()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        for value, var in (
            (cfg.phone_number_id, "WHATSAPP_CLOUD_PHONE_NUMBER_ID"),
            (cfg.token, "WHATSAPP_CLOUD_ACCESS_TOKEN"),
            (cfg.app_secret, "WHATSAPP_CLOUD_APP_SECRET"),
        ):
            if not value.strip():
                raise FatalPlatformError(
                    f"{var} is not set; WhatsApp needs it"
                    + (
                        " (it signs every webhook: without it none can be trusted)"
                        if "SECRET" in var
                        else ""
                    )
                )
        if not cfg.verify_token:
            log.warning(
                "WHATSAPP_CLOUD_VERIFY_TOKEN is not set: Meta's webhook subscription handshake "
                "will be refused (notifications still work once subscribed)"
            )
        if self.gate.closed:
            self.gate = RateGate(cfg.rate_interval)
        await self._check_credentials()
        routes = self.host.web_routes
        routes.remove(self.name)
        routes.add(self.name, "GET", cfg.webhook_path, self._handshake)
        routes.add(self.name, "POST", cfg.webhook_path, self._webhook)
        api = self.config.platforms.api_server
        try:
            where = await self.listener.open(
                routes,
                api_enabled=api.enabled,
                api_port=api.port,
                host=cfg.webhook_host,
                port=cfg.webhook_port,
                default_port=DEFAULT_PORT,
                label="WhatsApp webhook (WHATSAPP_CLOUD_WEBHOOK_HOST/WHATSAPP_CLOUD_WEBHOOK_PORT)",
            )
        except OSError as exc:
            raise FatalPlatformError(str(exc)) from exc
        self.report("connected", f"{self._display}, webhook {cfg.webhook_path} {where}")

    async def _check_credentials(self) -> None:
        self._display = self.cfg.phone_number_id
        try:
            info = await self.api.phone_number()
        except GraphAuthError as exc:
            raise FatalPlatformError(
                f"Meta refused WHATSAPP_CLOUD_ACCESS_TOKEN ({exc.message}); check it"
            ) from exc
        except GraphError as exc:
            if exc.code == 100 or exc.status == 404:
                raise FatalPlatformError(
                    f"WHATSAPP_CLOUD_PHONE_NUMBER_ID {self.cfg.phone_number_id!r} is not a phone "
                    f"number this token can use ({exc.message})"
                ) from exc
            raise
        except DeliveryError as exc:
            log.warning("could not check the WhatsApp credentials: %s", exc)
            return
        self._display = str(info.get("display_phone_number") or self._display)

    async def stop(self) -> None:
        self.answers.cancel()
        await self.listener.close(self.host.web_routes if self.bound else None)
        await self._tasks.drain(5)
        await self.gate.aclose()
        await self.api.close()
        self.report("stopped")

    @property
    def site(self) -> OwnSite | None:
        """The webhook's own listener, None when it rides on the API server."""
        return self.listener.site

    @property
    def webhook_port(self) -> int:
        return self.listener.port

    # --- inbound ------------------------------------------------------------------------

    async def _handshake(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        challenge = verify_challenge(
            self.cfg.verify_token,
            q.get("hub.mode", ""),
            q.get("hub.verify_token", ""),
            q.get("hub.challenge", ""),
        )
        if challenge is None:
            log.warning("WhatsApp webhook handshake refused (wrong hub.verify_token or mode)")
            return web.Response(status=403, text="forbidden")
        log.info("WhatsApp webhook subscription verified")
        return web.Response(text=challenge, content_type="text/plain")

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        size = request.content_length
        if size is not None and size > MAX_NOTIFICATION_BYTES:
            return web.Response(status=413)
        try:
            body = await read_limited(request.content, MAX_NOTIFICATION_BYTES)
        except TooLarge:
            return web.Response(status=413)
        except aiohttp.ClientError:
            return web.Response(status=400)
        if not valid_signature(
            self.cfg.app_secret, body, request.headers.get("X-Hub-Signature-256", "")
        ):
            self.refused += 1
            log.warning("WhatsApp webhook refused: missing or wrong X-Hub-Signature-256")
            return web.Response(status=403, text="forbidden")
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400)
        if not isinstance(payload, dict):
            return web.Response(status=400)
        incoming, failures = parse_notification(payload, self.cfg.phone_number_id, self.name)
        for failure in failures:
            self._failed_status(failure.recipient, failure.code, failure.title)
        if not incoming:
            return web.Response(status=200)
        task = self._tasks.spawn(self._take_all(incoming), name="whatsapp-notification")
        try:
            await asyncio.wait_for(asyncio.shield(task), RECEIVE_WAIT)
        except TimeoutError:
            log.info("a WhatsApp notification is still being taken; Meta answered")
        except IntakeError:
            return web.Response(status=503)  # not stored: Meta delivers it again
        return web.Response(status=200)

    async def _take_all(self, incoming: list[Incoming]) -> None:
        for item in incoming:  # a notification's messages in order, each in its user's order
            async with self._locks.of(item.event.source.chat_id):
                await self._take(item)

    async def _take(self, item: Incoming) -> None:
        event = item.event
        user = event.source.chat_id
        if item.sent_at > self._last_seen.get(user, 0.0):
            self._last_seen[user] = item.sent_at
            if item.sent_at - self._saved.get(user, 0.0) >= WINDOW_SAVE_STEP:
                self._saved[user] = item.sent_at
                self._spawn(self._save_window(user, item.sent_at))
        if event.message_id:
            self._last_wamid[user] = event.message_id
        if item.media and self.policy.allowlisted(event.source):
            event.media = await self._save_media(item)
        await self.dispatch(event)

    def _failed_status(self, recipient: str, code: int | None, title: str) -> None:
        if code == WINDOW_CLOSED:
            log.warning(
                "WhatsApp did not deliver a message to %s: more than 24 hours since they last "
                "wrote (131047); they must write first (or be sent an approved template)",
                recipient,
            )
        else:
            log.warning("WhatsApp did not deliver a message to %s: %s (%s)", recipient, title, code)

    async def _save_media(self, item: Incoming) -> list[MediaRef]:
        refs: list[MediaRef] = []
        for part in item.media:
            try:
                info = await self.api.media_info(part.media_id)
                url = str(info.get("url", ""))
                if not url:
                    continue
                data = await self.api.download(url)
            except DeliveryError as exc:
                log.warning("could not download WhatsApp media %s: %s", part.media_id, exc)
                continue
            refs.append(
                await save_media(
                    self.config.paths.media_dir,
                    data,
                    platform=self.name,
                    unique_id=part.media_id,
                    kind=part.kind,
                    file_name=part.file_name,
                    mime_type=(part.mime_type or str(info.get("mime_type") or "")).split(";")[0]
                    or None,
                )
            )
        return refs

    # --- the 24-hour window, kept across restarts ----------------------------------------

    async def _save_window(self, user: str, at: float) -> None:
        try:
            await self.host.store.kv_set(_KV + user, repr(at))
        except Exception as exc:  # a full disk must not stop the chat
            log.warning("could not save the WhatsApp window of %s: %s", user, exc)

    async def _window_start(self, user: str) -> float | None:
        seen = self._last_seen.get(user)
        if seen is not None or not self.bound:
            return seen
        try:
            raw = await self.host.store.kv_get(_KV + user)
        except Exception:
            return None
        try:
            seen = float(raw) if raw else None
        except ValueError:
            seen = None
        if seen is not None:
            self._last_seen[user] = seen
        return seen

    async def _check_window(self, user: str) -> None:
        seen = await self._window_start(user)
        if seen is not None and time.time() - seen > WINDOW_SECONDS:
            self.window_refusals += 1
            hours = (time.time() - seen) / 3600
            raise WindowClosed(
                400,
                WINDOW_CLOSED,
                f"not sent to {user}: their last message was {hours:.0f} h ago, outside "
                "WhatsApp's 24-hour customer-service window; they must write first",
            )

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro, name="whatsapp-task")

    # --- delivery -----------------------------------------------------------------------

    async def send(self, source: SessionSource, text: str) -> None:
        user = source.chat_id
        await self._check_window(user)
        for chunk in split_message(markdown_to_whatsapp(text), TEXT_LIMIT):
            try:
                await self.gate.run(user, functools.partial(self.api.send_text, user, chunk))
            except WindowClosed:
                self.window_refusals += 1
                log.warning(
                    "WhatsApp refused a reply to %s: outside the 24-hour customer-service "
                    "window (131047); not retried",
                    user,
                )
                raise

    async def send_file(self, source: SessionSource, path: str | Path, caption: str = "") -> None:
        await self._upload(source.chat_id, Path(path), caption)

    async def _upload(self, user: str, path: Path, caption: str = "") -> None:
        await self._check_window(user)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        kind = _kind_for(mime)
        media_id = await self.gate.run(user, lambda: self.api.upload(path, mime))
        content: dict[str, Any] = {"id": media_id}
        if caption and kind != "audio":
            content["caption"] = caption
        if kind == "document":
            content["filename"] = path.name
        await self.gate.run(user, lambda: self.api.send(user, kind, content))

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        return self.answers.around(FinalOnlyDelivery(self, source), source, source.chat_id)

    async def send_typing(self, source: SessionSource) -> None:
        await self._typing(source.chat_id)

    async def _typing(self, user: str) -> None:
        """Read receipt + typing indicator on the user's latest message (best effort)."""
        wamid = self._last_wamid.get(user)
        if not wamid:
            return
        try:
            await self.api.mark_read(wamid, typing=True)
        except DeliveryError as exc:
            log.debug("WhatsApp read/typing for %s failed: %s", user, exc)


def _kind_for(mime: str) -> str:
    if mime in ("image/jpeg", "image/png"):
        return "image"
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("audio/"):
        return "audio"
    return "document"
