"""signal-cli-rest-api's REST calls over aiohttp, each with a timeout.

``GET /v1/about`` (its ``mode`` must be ``json-rpc`` for the receive websocket),
``GET /v1/accounts`` (registered numbers), ``POST /v2/send`` (``number``, ``recipients`` (a
number, a uuid or ``group.<id>``), ``message``, ``base64_attachments`` as data URIs,
``edit_timestamp`` to edit an earlier message) answering 201 ``{"timestamp"}``,
``PUT``/``DELETE /v1/typing-indicator/{number}``, ``GET /v1/attachments/{id}``,
``DELETE /v1/remote-delete/{number}``. Errors are ``{"error": "..."}``; a rate limit is 429
with ``challenge_tokens`` (Signal wants a captcha solved for the account when it persists).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import mimetypes
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp

from hermes_gateway.delivery import PermanentDeliveryError, RetryAfter, TransientDeliveryError
from hermes_gateway.platforms.http_read import TooLarge, read_limited

__all__ = ["SignalApi", "SignalApiError"]

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024


class SignalApiError(PermanentDeliveryError):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"signal-cli-rest-api {status}: {message}")


class SignalApi:
    """One aiohttp session for one signal-cli-rest-api and one account."""

    def __init__(self, base: str, account: str, backoff: float = 2.0) -> None:
        self.base = base.rstrip("/")
        self.account = account
        self.backoff = backoff
        self._limited = 0
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def _number(self) -> str:
        return urllib.parse.quote(self.account, safe="")

    @property
    def receive_url(self) -> str:
        """The json-rpc mode websocket of this account's incoming envelopes."""
        parsed = urllib.parse.urlsplit(self.base)
        scheme = "wss" if parsed.scheme == "https" else "ws"
        return (
            urllib.parse.urlunsplit(parsed._replace(scheme=scheme)) + f"/v1/receive/{self._number}"
        )

    async def about(self) -> dict[str, Any]:
        body = await self._call("GET", "/v1/about")
        return body if isinstance(body, dict) else {}

    async def accounts(self) -> list[str]:
        body = await self._call("GET", "/v1/accounts")
        return [str(a) for a in body] if isinstance(body, list) else []

    async def send(
        self,
        recipient: str,
        message: str,
        *,
        attachments: list[Path] | None = None,
        edit_timestamp: int | None = None,
    ) -> int:
        """Send (or edit, with ``edit_timestamp``) a message; Signal's timestamp of it."""
        payload: dict[str, Any] = {
            "number": self.account,
            "recipients": [recipient],
            "message": message,
            "text_mode": "normal",
        }
        if attachments:
            files = list(attachments)
            payload["base64_attachments"] = await asyncio.to_thread(
                lambda: [_data_uri(p) for p in files]
            )
        if edit_timestamp is not None:
            payload["edit_timestamp"] = edit_timestamp
        body = await self._call("POST", "/v2/send", json_body=payload)
        try:
            return int(body.get("timestamp", 0)) if isinstance(body, dict) else 0
        except (TypeError, ValueError):
            return 0

    async def typing(self, recipient: str, *, on: bool = True) -> None:
        await self._call(
            "PUT" if on else "DELETE",
            f"/v1/typing-indicator/{self._number}",
            json_body={"recipient": recipient},
        )

    async def remote_delete(self, recipient: str, timestamp: int) -> None:
        await self._call(
            "DELETE",
            f"/v1/remote-delete/{self._number}",
            json_body={"recipient": recipient, "timestamp": timestamp},
        )

    async def attachment(self, attachment_id: str, limit: int = MAX_ATTACHMENT_BYTES) -> bytes:
        url = f"{self.base}/v1/attachments/{urllib.parse.quote(attachment_id, safe='')}"
        try:
            async with self.session.get(url) as resp:
                if resp.status >= 400:
                    raise SignalApiError(resp.status, "attachment not available")
                return await read_limited(resp.content, limit)
        except TooLarge:
            raise SignalApiError(413, "attachment too large") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(f"cannot reach signal-cli-rest-api: {exc}") from exc

    async def _call(self, method: str, path: str, *, json_body: Any = None) -> Any:
        try:
            async with self.session.request(method, self.base + path, json=json_body) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(
                f"cannot reach signal-cli-rest-api: {exc or type(exc).__name__}"
            ) from exc
        if status < 400:
            self._limited = 0
            return body if body is not None else {}
        message = str(body.get("error", "")) if isinstance(body, dict) else ""
        message = message or f"HTTP {status}"
        if status == 429:
            wait = min(300.0, self.backoff * (2**self._limited))
            self._limited += 1
            if isinstance(body, dict) and body.get("challenge_tokens"):
                log.warning(
                    "Signal rate-limits %s and asks for a captcha challenge; solve it and post "
                    "it to /v1/accounts/{number}/rate-limit-challenge",
                    self.account,
                )
            raise RetryAfter(wait)
        if status >= 500:
            raise TransientDeliveryError(f"signal-cli-rest-api {status}: {message}")
        raise SignalApiError(status, message)


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = base64.b64encode(path.read_bytes()).decode()
    return f"data:{mime};filename={path.name};base64,{data}"
