"""A fake WhatsApp Cloud API on 127.0.0.1: the Graph endpoints a business number uses, and
users who write to it through signed webhook notifications.

Graph (``/{version}/...``, bearer token), as documented:

* ``GET /{phone_number_id}``: ``display_phone_number``, ``verified_name``, ``id``;
* ``POST /{phone_number_id}/messages``: a message (``text``, ``image``, ``document``, ...):
  ``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``;
  or ``{"status": "read", "message_id", "typing_indicator"?}``: ``{"success": true}``;
* ``POST /{phone_number_id}/media`` (multipart ``file``, ``type``, ``messaging_product``):
  ``{"id"}``; ``GET /{media_id}``: ``{"url", "mime_type", "sha256", "file_size", "id"}``;
  the url serves the bytes to the same bearer token.

Errors use Graph's envelope ``{"error": {"message", "type", "code", "error_data":
{"messaging_product", "details"}, "fbtrace_id"}}``: a wrong token is 401 code 190; an unknown
object 400 code 100; a free-form message to a user who has not written in 24 hours is 400
code 131047 ("Re-engagement message"); forced rate limits are 400 code 130429 ("Rate limit
hit"), 400 code 80007 or 429 code 4.

Users: :meth:`FakeWhatsApp.user_sends` posts a ``messages`` notification to the gateway's
webhook as Meta does, signed with ``X-Hub-Signature-256`` (HMAC-SHA256 of the body, app
secret) or forged, and returns the HTTP status; :meth:`handshake` is Meta's subscription GET.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._aiohttp_fake import AiohttpFake

__all__ = ["FakeWhatsApp", "WaSent"]

VERSION = "v20.0"
WINDOW = 24 * 3600


def _wamid() -> str:
    return "wamid.HBgL" + secrets.token_hex(20).upper()


@dataclass
class WaSent:
    to: str
    kind: str
    content: dict[str, Any]
    wamid: str
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return str(self.content.get("body", "")) if self.kind == "text" else ""


class FakeWhatsApp(AiohttpFake):
    """Meta's Graph API for one business phone number, and its users."""

    client_max_size = 128 * 1024 * 1024
    calls_gateway = True

    def __init__(self) -> None:
        super().__init__()
        self.token = "EAAG" + secrets.token_hex(24)
        self.app_secret = secrets.token_hex(16)
        self.verify_token = "verify-" + secrets.token_hex(6)
        self.phone_number_id = str(100000000000000 + secrets.randbelow(10**12))
        self.display_number = "+1 555-000-0000"
        self.sent: list[WaSent] = []
        self.reads: list[tuple[str, bool]] = []
        """(message id, typing indicator shown) per read receipt."""
        self.uploads: dict[str, tuple[bytes, str, str]] = {}
        """media id -> (data, mime type, file name): what the bot uploaded or users sent."""
        self.last_inbound: dict[str, float] = {}
        """wa_id -> when the user last wrote (wall clock), for the 24-hour window."""
        self.rate_limited = 0
        self.refused_window = 0
        self.webhook_url = ""
        self._force: list[tuple[int, int, str]] = []

    # --- lifecycle ----------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{version}/{path:.*}", self._route)
        app.router.add_get("/download/{media_id}", self._download)

    # --- control API --------------------------------------------------------------------

    def rate_limit(self, count: int, code: int = 130429) -> None:
        """The next ``count`` sends are refused with this rate-limit code."""
        status, message = {
            4: (429, "(#4) Application request limit reached"),
            80007: (400, "(#80007) Rate limit issues"),
            130429: (400, "(#130429) Rate limit hit"),
        }[code]
        self._force.extend([(status, code, message)] * count)

    def add_user_media(self, data: bytes, mime: str, name: str = "") -> str:
        media_id = str(secrets.randbelow(10**15))
        self.uploads[media_id] = (data, mime, name)
        return media_id

    def notification(
        self,
        wa_id: str,
        message: dict[str, Any],
        *,
        name: str = "",
        phone_number_id: str | None = None,
        statuses: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_number.replace(" ", "").replace("-", ""),
                "phone_number_id": phone_number_id or self.phone_number_id,
            },
        }
        if message:
            value["contacts"] = [{"profile": {"name": name or wa_id}, "wa_id": wa_id}]
            value["messages"] = [message]
        if statuses:
            value["statuses"] = statuses
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "WABA" + wa_id[-4:], "changes": [{"value": value, "field": "messages"}]}
            ],
        }

    async def user_sends(
        self,
        wa_id: str,
        text: str = "",
        *,
        name: str = "",
        wamid: str | None = None,
        media: tuple[str, str] | None = None,
        sent_at: float | None = None,
        signature: str | None = None,
        sign: bool = True,
        phone_number_id: str | None = None,
    ) -> tuple[int, str]:
        """A user writes: Meta posts the notification. ``(status, wamid)``.

        ``media`` is ``(kind, media id)`` (the text becomes its caption); ``sent_at`` backdates
        the message (Meta's ``timestamp``).
        """
        wamid = wamid or _wamid()
        at = time.time() if sent_at is None else sent_at
        message: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(int(at))}
        if media is None:
            message.update(type="text", text={"body": text})
        else:
            kind, media_id = media
            data, mime, fname = self.uploads[media_id]
            obj: dict[str, Any] = {
                "id": media_id,
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            if text:
                obj["caption"] = text
            if kind == "document":
                obj["filename"] = fname
            message.update(type=kind, **{kind: obj})
        if (phone_number_id or self.phone_number_id) == self.phone_number_id:
            # Meta knows the user wrote before it tells the webhook: the window opens now.
            self.last_inbound[wa_id] = max(self.last_inbound.get(wa_id, 0.0), at)
        status = await self.post_notification(
            self.notification(wa_id, message, name=name, phone_number_id=phone_number_id),
            signature=signature,
            sign=sign,
        )
        return status, wamid

    async def post_notification(
        self, payload: dict[str, Any], *, signature: str | None = None, sign: bool = True
    ) -> int:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if sign:
            digest = hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = signature or f"sha256={digest}"
        async with self.client.post(self.webhook_url, data=body, headers=headers) as resp:
            return resp.status

    async def handshake(
        self, token: str, challenge: str, mode: str = "subscribe"
    ) -> tuple[int, str]:
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        async with self.client.get(self.webhook_url, params=params) as resp:
            return resp.status, await resp.text()

    def to(self, wa_id: str) -> list[WaSent]:
        return [s for s in self.sent if s.to == wa_id]

    def texts(self, wa_id: str) -> list[str]:
        return [s.text for s in self.to(wa_id) if s.kind == "text"]

    # --- Graph --------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode(), self.token.encode()
        )

    async def _route(self, request: web.Request) -> web.StreamResponse:
        version, path = request.match_info["version"], request.match_info["path"]
        self.requests.append((request.method, path))
        if not self._authorized(request):
            return _error(
                401, 190, "Invalid OAuth access token - Cannot parse access token", "OAuthException"
            )
        if version != VERSION:
            return _error(400, 2635, f"(#2635) You are calling a deprecated version {version}")
        pnid = self.phone_number_id
        if request.method == "GET" and path == pnid:
            return web.json_response(
                {"display_phone_number": self.display_number, "verified_name": "Hermes", "id": pnid}
            )
        if request.method == "POST" and path == f"{pnid}/messages":
            return await self._messages(request)
        if request.method == "POST" and path == f"{pnid}/media":
            return await self._upload(request)
        if request.method == "GET" and path in self.uploads:
            data, mime, _ = self.uploads[path]
            return web.json_response(
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self.base}/download/{path}",
                    "mime_type": mime,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "file_size": str(len(data)),
                    "id": path,
                }
            )
        return _error(
            400,
            100,
            f"Unsupported {request.method} request. Object with ID '{path.split('/')[0]}' does not exist",
        )

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 100, "(#100) Invalid parameter")
        if body.get("messaging_product") != "whatsapp":
            return _error(400, 100, "(#100) The parameter messaging_product is required.")
        if body.get("status") == "read":
            self.reads.append((str(body.get("message_id", "")), "typing_indicator" in body))
            self.changed()
            return web.json_response({"success": True})
        if self._force:
            status, code, message = self._force.pop(0)
            self.rate_limited += 1
            return _error(
                status,
                code,
                message,
                details="Message failed to send because there were too many messages sent from this phone number in a short period of time",
            )
        to, kind = str(body.get("to", "")), str(body.get("type", ""))
        content = body.get(kind)
        if not to.isdigit() or not isinstance(content, dict):
            return _error(400, 100, "(#100) Invalid parameter")
        if kind != "template" and time.time() - self.last_inbound.get(to, 0.0) > WINDOW:
            self.refused_window += 1
            return _error(
                400,
                131047,
                "(#131047) Re-engagement message",
                details="Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            )
        if kind == "text" and len(str(content.get("body", ""))) > 4096:
            return _error(
                400, 100, "(#100) Param text['body'] must be at most 4096 characters long."
            )
        if (
            kind in ("image", "document", "audio", "video")
            and str(content.get("id", "")) not in self.uploads
        ):
            return _error(400, 131053, "(#131053) Media upload error")
        sent = WaSent(to, kind, content, _wamid())
        self.sent.append(sent)
        self.changed()
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": sent.wamid}],
            }
        )

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form.get("file")
        if form.get("messaging_product") != "whatsapp" or not isinstance(upload, web.FileField):
            return _error(400, 100, "(#100) The parameter messaging_product is required.")
        data = upload.file.read()
        media_id = str(secrets.randbelow(10**15))
        self.uploads[media_id] = (data, str(form.get("type", "")), upload.filename or "")
        return web.json_response({"id": media_id})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401)
        found = self.uploads.get(request.match_info["media_id"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])


def _error(
    status: int, code: int, message: str, kind: str = "OAuthException", details: str = ""
) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "A" + secrets.token_hex(10),
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return web.json_response({"error": error}, status=status)
