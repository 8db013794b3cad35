"""A fake Twilio on 127.0.0.1: the REST API a bot sends SMS with, and phones that text it.

REST (``/2010-04-01``), as documented:

* ``GET /Accounts/{AccountSid}.json``: the account (the credentials check);
* ``POST /Accounts/{AccountSid}/Messages.json`` (form ``From``, ``To``, ``Body``): the
  message resource (``sid`` ``SM`` + 32 hex, ``status: queued``, ``num_segments``), 201;
* media: ``GET /Accounts/{AccountSid}/Messages/{sid}/Media/{media sid}``.

Basic auth with the account SID and auth token; a wrong one is 401 with Twilio's error body
``{"code": 20003, "message": "Authenticate", "more_info", "status": 401}``. A forced rate limit
answers 429 ``{"code": 20429, "message": "Too Many Requests"}``; a ``Body`` over 1600
characters is 400 code 21617, a ``To`` that is not E.164 is 400 code 21211.

Phones: :meth:`FakeTwilio.text` posts an inbound SMS to the gateway's webhook exactly as
Twilio does (form-encoded ``MessageSid``, ``AccountSid``, ``From``, ``To``, ``Body``,
``NumMedia``, ``MediaUrlN``...), signed with ``X-Twilio-Signature`` (HMAC-SHA1 of the webhook
URL followed by the sorted parameters, base64, keyed by the auth token), and returns the HTTP
status the gateway answered; it can forge or omit the signature, and send the same
``MessageSid`` again as Twilio's retries do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._aiohttp_fake import AiohttpFake

__all__ = ["FakeTwilio", "SentSms"]

MAX_BODY = 1600
OPT_OUT = {"STOP": "STOP", "UNSUBSCRIBE": "STOP", "START": "START", "HELP": "HELP"}
"""Twilio's default opt-out keywords and the ``OptOutType`` it posts for them."""


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """As Twilio's documentation describes it (written from the docs, not from our code)."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


@dataclass
class SentSms:
    sid: str
    sender: str
    to: str
    body: str
    at: float = field(default_factory=time.monotonic)


class FakeTwilio(AiohttpFake):
    """Twilio's REST API for one account, and the phones that text the bot."""

    calls_gateway = True

    def __init__(self) -> None:
        super().__init__()
        self.account_sid = "AC" + secrets.token_hex(16)
        self.token = secrets.token_hex(16)
        self.number = "+15550000000"
        self.sent: list[SentSms] = []
        self.rate_limited = 0
        self.webhook_url = ""
        """Where inbound SMS are posted (the gateway's webhook on 127.0.0.1), set by the test."""
        self.public_url = ""
        """The URL set in the Twilio console (the tunnel's), which the signature covers."""
        self.media: dict[str, tuple[bytes, str]] = {}
        self.stopped: set[str] = set()
        """Numbers that sent STOP: Twilio refuses to message them (21610)."""
        self._force_429 = 0

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.base}/2010-04-01"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/2010-04-01/{path:.*}", self._route)

    # --- control API --------------------------------------------------------------------

    def rate_limit(self, count: int) -> None:
        """The next ``count`` sends are refused with 429 / 20429."""
        self._force_429 = count

    def add_media(self, data: bytes, content_type: str) -> str:
        """A media URL as Twilio puts it in ``MediaUrl0``."""
        msid = _sid("ME")
        self.media[msid] = (data, content_type)
        return f"{self.url}/Accounts/{self.account_sid}/Messages/{_sid('MM')}/Media/{msid}"

    async def text(
        self,
        sender: str,
        body: str,
        *,
        sid: str | None = None,
        media: list[tuple[str, str]] = (),  # type: ignore[assignment]
        signature: str | None = None,
        sign: bool = True,
        url: str | None = None,
    ) -> tuple[int, str, str]:
        """A phone texts the bot: Twilio posts the webhook. ``(status, response body, sid)``.

        ``signature`` replaces the real one (a forgery); ``sign=False`` omits the header.
        """
        sid = sid or _sid("SM")
        params = {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": str(len(media)),
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "To": self.number,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": "2010-04-01",
        }
        keyword = body.strip().upper()
        if keyword in OPT_OUT:
            params["OptOutType"] = OPT_OUT[keyword]  # Advanced Opt-Out, as Twilio adds it
            if OPT_OUT[keyword] == "STOP":
                self.stopped.add(sender)
            elif OPT_OUT[keyword] == "START":
                self.stopped.discard(sender)
        for i, (media_url, content_type) in enumerate(media):
            params[f"MediaUrl{i}"] = media_url
            params[f"MediaContentType{i}"] = content_type
        target = url or self.webhook_url
        headers = {}
        if sign:
            headers["X-Twilio-Signature"] = signature or twilio_signature(
                self.token, self.public_url or self.webhook_url, params
            )
        async with self.client.post(target, data=params, headers=headers) as resp:
            return resp.status, await resp.text(), sid

    def to(self, number: str) -> list[SentSms]:
        return [s for s in self.sent if s.to == number]

    def bodies(self, number: str) -> list[str]:
        return [s.body for s in self.to(number)]

    # --- REST ---------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and hmac.compare_digest(password, self.token)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.requests.append((request.method, path))
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        prefix = f"Accounts/{self.account_sid}"
        if request.method == "GET" and path == f"{prefix}.json":
            return web.json_response(
                {"sid": self.account_sid, "friendly_name": "fake", "status": "active"}
            )
        if request.method == "POST" and path == f"{prefix}/Messages.json":
            return await self._send(request)
        if request.method == "GET" and path.startswith(f"{prefix}/Messages/") and "/Media/" in path:
            found = self.media.get(path.rsplit("/", 1)[-1])
            if found is None:
                return _error(404, 20404, "The requested resource was not found")
            return web.Response(body=found[0], content_type=found[1])
        if path.startswith("Accounts/"):
            return _error(404, 20404, "The requested resource was not found")
        return _error(404, 20404, "The requested resource was not found")

    async def _send(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        sender, to, body = (str(form.get(k, "")) for k in ("From", "To", "Body"))
        if self._force_429 > 0:
            self._force_429 -= 1
            self.rate_limited += 1
            return _error(429, 20429, "Too Many Requests", {"Retry-After": "0.2"})
        if not to.startswith("+") or not to[1:].isdigit():
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if sender != self.number:
            return _error(400, 21606, "The From phone number is not a valid, SMS-capable number")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if to in self.stopped:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        if len(body) > MAX_BODY:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        sms = SentSms(_sid("SM"), sender, to, body)
        self.sent.append(sms)
        self.changed()
        return web.json_response(
            {
                "sid": sms.sid,
                "account_sid": self.account_sid,
                "from": sender,
                "to": to,
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "error_code": None,
                "error_message": None,
            },
            status=201,
        )


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)
