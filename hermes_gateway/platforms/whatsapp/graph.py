"""The Graph API calls of the WhatsApp Cloud API, over aiohttp, each with a timeout.

Bearer auth with the access token. Graph's error envelope is
``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}``; Meta
asks clients to act on ``code``, not on the HTTP status, and so do we:

* 4 (app call rate), 80007 (business account rate), 130429 (throughput), 131056 (too many
  messages to one user), 131048 (spam rate limit): refused, not sent: :class:`RetryAfter`
  with a delay that doubles on each consecutive one (Graph sends no ``Retry-After``); the
  shared rate gate retries a few times and then gives up (never forever);
* 131047: more than 24 hours since the user last wrote: :class:`WindowClosed`, permanent;
* 190 / 0 (token expired or invalid), 10 / 200-299 (permissions): :class:`GraphAuthError`;
* 1, 2, 131000 and 5xx: transient; anything else permanent for that message.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp

from hermes_gateway.delivery import PermanentDeliveryError, RetryAfter, TransientDeliveryError
from hermes_gateway.platforms.http_read import TooLarge, read_limited

__all__ = [
    "RATE_LIMIT_CODES",
    "WINDOW_CLOSED",
    "GraphApi",
    "GraphAuthError",
    "GraphError",
    "WindowClosed",
]

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131056, 131048})
WINDOW_CLOSED = 131047
AUTH_CODES = frozenset({0, 190, 10, *range(200, 300)})
TRANSIENT_CODES = frozenset({1, 2, 131000})
MAX_BACKOFF = 60.0
MAX_MEDIA_BYTES = 100 * 1024 * 1024
"""Documents may be 100 MB on WhatsApp; nothing larger is downloaded."""


class GraphError(PermanentDeliveryError):
    """Graph refused a request; ``code`` is Meta's error code."""

    def __init__(self, status: int, code: int | None, message: str, details: str = "") -> None:
        self.status, self.code, self.message, self.details = status, code, message, details
        text = f"WhatsApp Cloud API {status} (code {code}): {message}"
        super().__init__(f"{text}: {details}" if details and details not in message else text)


class GraphAuthError(GraphError):
    """The access token is expired, invalid or lacks a permission."""


class WindowClosed(GraphError):
    """Free-form messages need the user to have written in the last 24 hours."""


class GraphApi:
    """One aiohttp session for one business phone number's Graph endpoints."""

    def __init__(
        self, base: str, version: str, phone_number_id: str, token: str, backoff: float = 1.0
    ) -> None:
        self.base = f"{base.rstrip('/')}/{version.strip('/')}"
        self.phone_number_id = phone_number_id
        self._token = token
        self.backoff = backoff
        self._limited = 0
        """Consecutive rate-limit refusals (the next delay doubles with each)."""
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=TIMEOUT, headers={"Authorization": f"Bearer {self._token}"}
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # --- calls --------------------------------------------------------------------------

    async def phone_number(self) -> dict[str, Any]:
        """``GET /{phone_number_id}``: proves the token and the id."""
        return await self._call(
            "GET",
            f"{self.base}/{self.phone_number_id}",
            params={"fields": "display_phone_number,verified_name"},
        )

    async def send(self, to: str, kind: str, content: dict[str, Any]) -> str:
        """``POST /{phone_number_id}/messages``; the new message's wamid."""
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": kind,
            kind: content,
        }
        reply = await self._call(
            "POST", f"{self.base}/{self.phone_number_id}/messages", json_body=payload
        )
        messages = reply.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id", ""))
        return ""

    async def send_text(self, to: str, body: str) -> str:
        return await self.send(to, "text", {"preview_url": False, "body": body})

    async def mark_read(self, message_id: str, *, typing: bool) -> None:
        """Blue ticks on ``message_id``, and the typing indicator (up to 25 s, or until we
        answer) when ``typing``: one call, as the Cloud API documents it."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        await self._call("POST", f"{self.base}/{self.phone_number_id}/messages", json_body=payload)

    async def media_info(self, media_id: str) -> dict[str, Any]:
        """``GET /{media_id}``: a short-lived download ``url``, ``mime_type``, ``file_size``."""
        return await self._call("GET", f"{self.base}/{media_id}")

    async def download(self, url: str, limit: int = MAX_MEDIA_BYTES) -> bytes:
        """The media behind a ``media_info`` url (it needs the same bearer token)."""
        try:
            async with self.session.get(url) as resp:
                if resp.status >= 400:
                    raise GraphError(resp.status, None, f"media download refused ({resp.reason})")
                return await read_limited(resp.content, limit)
        except TooLarge:
            raise GraphError(413, None, "media too large") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(f"cannot reach WhatsApp media: {exc}") from exc

    async def upload(self, path: Path, mime_type: str) -> str:
        """``POST /{phone_number_id}/media`` (multipart); the media id to send."""
        data = await _read_file(path)
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime_type)
        form.add_field("file", data, filename=path.name, content_type=mime_type)
        reply = await self._call("POST", f"{self.base}/{self.phone_number_id}/media", data=form)
        return str(reply.get("id", ""))

    # --- plumbing -----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        try:
            async with self.session.request(
                method, url, params=params, json=json_body, data=data
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(
                f"cannot reach the WhatsApp Cloud API: {exc or type(exc).__name__}"
            ) from exc
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if status < 400 and "error" not in body:
            self._limited = 0
            return body
        raise self._error(status, body)

    def _error(self, status: int, body: dict[str, Any]) -> Exception:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        assert isinstance(error, dict)
        code = error.get("code")
        code = code if isinstance(code, int) else None
        message = str(error.get("message") or f"HTTP {status}")
        data = error.get("error_data")
        details = str(data.get("details", "")) if isinstance(data, dict) else ""
        if code in RATE_LIMIT_CODES or (code is None and status == 429):
            wait = min(MAX_BACKOFF, self.backoff * (2**self._limited))
            self._limited += 1
            log.info("WhatsApp rate limit (code %s); waiting %.1fs", code, wait)
            return RetryAfter(wait)
        if code == WINDOW_CLOSED:
            return WindowClosed(status, code, message, details)
        if code in AUTH_CODES or status == 401:
            return GraphAuthError(status, code, message, details)
        if code in TRANSIENT_CODES or status >= 500:
            return TransientDeliveryError(f"WhatsApp Cloud API {status} (code {code}): {message}")
        return GraphError(status, code, message, details)


async def _read_file(path: Path) -> bytes:
    import asyncio

    return await asyncio.to_thread(path.read_bytes)
