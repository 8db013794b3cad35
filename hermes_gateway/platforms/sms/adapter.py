"""SMS through Twilio as a gateway platform.

In: Twilio posts each SMS to our webhook (``POST /webhooks/twilio``, Hermes Agent's path).
The request must carry Twilio's ``X-Twilio-Signature`` for SMS_WEBHOOK_URL (the public URL set
in the Twilio console); a missing or forged one is answered 403 and never reaches the agent.
The message is stored by the runner (``host.receive``) before Twilio gets its 200, an empty
TwiML ``<Response/>``: the answer goes out later through the REST API, so Twilio's 15-second
webhook timeout never matters however long the agent thinks. Twilio's ``MessageSid`` is the
message id: a webhook delivered twice is dropped by the inbox.

Out: ``POST /Accounts/{sid}/Messages.json`` from TWILIO_PHONE_NUMBER. Markdown is stripped
(an SMS shows every asterisk), the answer is split at SMS segment limits
(:mod:`.segments`) and capped; no streaming, one answer per turn.

The webhook is served by the API server when it runs and SMS_WEBHOOK_PORT is not set, else
on a listener of its own (SMS_WEBHOOK_HOST:SMS_WEBHOOK_PORT, default 127.0.0.1:8080): see
:mod:`hermes_gateway.platforms.web_routes`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import urllib.parse

import aiohttp
from aiohttp import web

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import Config
from hermes_gateway.delivery import DeliveryError, RateGate
from hermes_gateway.delivery.plain_text import markdown_to_plain
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, MessageEvent, SessionSource
from hermes_gateway.platforms.base import FatalPlatformError, IntakeError, PlatformAdapter
from hermes_gateway.platforms.http_read import TooLarge, read_limited
from hermes_gateway.platforms.sms.inbound import MAX_FORM_BYTES, SmsForm, parse_form, to_event
from hermes_gateway.platforms.sms.segments import split_sms
from hermes_gateway.platforms.sms.signature import valid_signature
from hermes_gateway.platforms.sms.transport import TwilioApi, TwilioError
from hermes_gateway.platforms.web_routes import OwnSite, WebhookListener
from hermes_gateway.tasks import TaskSet

__all__ = ["DEFAULT_PORT", "WEBHOOK_PATH", "SmsAdapter"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/twilio"
DEFAULT_PORT = 8080
"""Hermes Agent's SMS_WEBHOOK_PORT default."""
RECEIVE_WAIT = 10.0
"""Seconds the webhook waits for the runner to take a message before answering anyway (a
command or a pairing reply runs inline; Twilio gives up after 15 s)."""
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _twiml(status: int = 200) -> web.Response:
    return web.Response(text=EMPTY_TWIML, status=status, content_type="application/xml")


class SmsAdapter(PlatformAdapter):
    """Twilio SMS: one DM session per phone number.

    Args:
        config: The gateway configuration (``config.platforms.sms`` is used).
        policy: Who may talk; consulted here only before downloading MMS media (the runner
            makes the real decision).
    """

    name = "sms"
    acknowledges_busy = False

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg = cfg = config.platforms.sms
        self.policy = policy
        self.api = TwilioApi(cfg.api_base, cfg.account_sid, cfg.token)
        self.gate = RateGate(cfg.rate_interval)
        self.listener = WebhookListener(self.name, "SMS", "SMS_WEBHOOK_PORT", self.report)
        """The port the webhook is served on (the API server's or our own), once started."""
        self.refused = 0
        """Webhooks refused for a missing or wrong signature (for tests and the log)."""
        self._tasks = TaskSet("sms")
        """Waits for the API server when the webhook rides on it (see web_routes)."""

    # --- lifecycle ----------------------------------------------------------------------

    def _check_config(self) -> None:
        cfg = self.cfg
        for value, var in (
            (cfg.account_sid, "TWILIO_ACCOUNT_SID"),
            (cfg.token, "TWILIO_AUTH_TOKEN"),
            (cfg.phone_number, "TWILIO_PHONE_NUMBER"),
        ):
            if not value.strip():
                raise FatalPlatformError(f"{var} is not set; SMS needs it")
        if not cfg.webhook_url and not cfg.insecure_no_signature:
            raise FatalPlatformError(
                "SMS_WEBHOOK_URL is not set: it is the public URL Twilio posts to (as in the "
                "Twilio console), which Twilio's signature covers; without it no SMS can be "
                "verified. Set it (or SMS_INSECURE_NO_SIGNATURE=true, for development only)"
            )
        if cfg.webhook_url:
            parsed = urllib.parse.urlsplit(cfg.webhook_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise FatalPlatformError(
                    f"SMS_WEBHOOK_URL {cfg.webhook_url!r} is not an http(s) URL"
                )

    async def start(self) -> None:
        self._check_config()
        if self.gate.closed:
            self.gate = RateGate(self.cfg.rate_interval)
        try:
            await self.api.account()
        except TwilioError as exc:
            if exc.status in (401, 403, 404):
                raise FatalPlatformError(
                    f"Twilio refused TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN ({exc.status}: "
                    f"{exc.message}); check both"
                ) from exc
            raise
        except DeliveryError as exc:
            # Twilio unreachable: webhooks may still come; sending retries per message.
            log.warning("could not check the Twilio credentials: %s", exc)
        if self.cfg.insecure_no_signature:
            log.warning(
                "SMS_INSECURE_NO_SIGNATURE=true: Twilio webhooks are NOT verified; anyone who "
                "can reach the webhook can write as any phone number"
            )
        routes = self.host.web_routes
        routes.remove(self.name)
        routes.add(self.name, "POST", WEBHOOK_PATH, self._webhook)
        api = self.config.platforms.api_server
        try:
            where = await self.listener.open(
                routes,
                api_enabled=api.enabled,
                api_port=api.port,
                host=self.cfg.webhook_host,
                port=self.cfg.webhook_port,
                default_port=DEFAULT_PORT,
                label="SMS webhook (SMS_WEBHOOK_HOST/SMS_WEBHOOK_PORT)",
            )
        except OSError as exc:
            raise FatalPlatformError(str(exc)) from exc
        if self.listener.site is None and WEBHOOK_PATH.rsplit("/", 1)[-1] in api.webhooks:
            log.warning(
                "the API server's webhook route 'twilio' is shadowed by the SMS webhook "
                "(%s); rename that route",
                WEBHOOK_PATH,
            )
        self.report("connected", f"{self.cfg.phone_number}, webhook {WEBHOOK_PATH} {where}")

    async def stop(self) -> None:
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

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        size = request.content_length
        if size is not None and size > MAX_FORM_BYTES:
            return _twiml(413)
        try:
            body = await read_limited(request.content, MAX_FORM_BYTES)
        except TooLarge:
            return _twiml(413)
        except aiohttp.ClientError:
            return _twiml(400)
        try:
            form = parse_form(body)
        except ValueError:
            return _twiml(400)
        if not self._signed(request, form):
            self.refused += 1
            log.warning("SMS webhook refused: missing or wrong X-Twilio-Signature")
            return web.Response(status=403, text="forbidden")
        event = to_event(form, self.name)
        if event is None or event.source.user_id == self.cfg.phone_number:
            return _twiml()  # a status callback or our own number's echo
        task = self._tasks.spawn(self._take(event, form), name="sms-message")
        try:
            await asyncio.wait_for(asyncio.shield(task), RECEIVE_WAIT)
        except TimeoutError:
            log.info("SMS %s is still being taken; Twilio answered", event.message_id)
        except IntakeError:
            return _twiml(503)  # not stored: no 200, so Twilio reports a failed delivery
        return _twiml()

    def _signed(self, request: web.Request, form: SmsForm) -> bool:
        if self.cfg.insecure_no_signature and not self.cfg.webhook_url:
            return True
        given = request.headers.get("X-Twilio-Signature", "")
        return valid_signature(self.cfg.token, self.cfg.webhook_url, form.params, given)

    async def _take(self, event: MessageEvent, form: SmsForm) -> None:
        if form.media and self.policy.allowlisted(event.source):
            event.media = await self._save_media(event, form)
        await self.dispatch(event)

    async def _save_media(self, event: MessageEvent, form: SmsForm) -> list[MediaRef]:
        """Download MMS media (only from Twilio's own API host: the URL came in the form)."""
        api_host = urllib.parse.urlsplit(self.api.base).netloc
        refs: list[MediaRef] = []
        for i, (url, mime) in enumerate(form.media):
            if urllib.parse.urlsplit(url).netloc != api_host:
                log.warning("MMS media not on Twilio's API host; skipped")
                continue
            try:
                data, served = await self.api.media(url)
            except DeliveryError as exc:
                log.warning("could not download MMS media: %s", exc)
                continue
            refs.append(
                await save_media(
                    self.config.paths.media_dir,
                    data,
                    platform=self.name,
                    unique_id=f"{event.message_id}-{i}",
                    mime_type=(mime or served).split(";")[0] or None,
                )
            )
        return refs

    # --- delivery -----------------------------------------------------------------------

    async def send(self, source: SessionSource, text: str) -> None:
        """Send ``text`` as plain SMS, split at segment limits, in order."""
        cfg = self.cfg
        bodies = split_sms(
            markdown_to_plain(text),
            per_message=cfg.segments_per_message,
            max_total=cfg.max_segments,
        )
        to = source.chat_id
        for body in bodies:
            await self.gate.run(to, functools.partial(self.api.send, cfg.phone_number, to, body))
