"""Twilio's REST API over aiohttp: send a message, check the credentials, fetch MMS media.

Basic auth with the account SID and auth token; every call has a timeout. Twilio's error body
is ``{"code", "message", "more_info", "status"}``; its errors become the delivery errors the
shared :class:`~hermes_gateway.delivery.RateGate` understands:

* 429 (code 20429, "Too Many Requests"): :class:`RetryAfter` (``Retry-After`` when sent,
  else a second): the message was not accepted, so sending it again cannot duplicate it;
* 401 (code 20003): the credentials are wrong: permanent, naming the variables;
* 400 with a code about the recipient (21211 invalid number, 21610 the person sent STOP,
  21614 not a mobile number...): permanent for that number;
* 5xx and network failures: transient.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import aiohttp

from hermes_gateway.delivery import (
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
)
from hermes_gateway.platforms.http_read import TooLarge, read_limited

__all__ = ["TwilioApi", "TwilioError"]

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
MAX_MEDIA_BYTES = 5 * 1024 * 1024
"""MMS media larger than this are not downloaded (Twilio's own MMS limit is 5 MB)."""


class TwilioError(PermanentDeliveryError):
    """Twilio refused a request for good; ``code`` is Twilio's error code."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"Twilio {status} (code {code}): {message}")


class TwilioApi:
    """One aiohttp session for Twilio's REST API (``2010-04-01``)."""

    def __init__(self, base: str, account_sid: str, token: str) -> None:
        self.base = base.rstrip("/")
        self.account_sid = account_sid
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{token}".encode()).decode()
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        """Messages Twilio accepted (for the log and benchmarks)."""

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=TIMEOUT, headers={"Authorization": self._auth}
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def _account(self) -> str:
        return f"{self.base}/Accounts/{self.account_sid}"

    async def account(self) -> dict[str, Any]:
        """``GET /Accounts/{sid}.json``: proves the SID and token (401 if not)."""
        return await self._call("GET", f"{self._account}.json")

    async def send(self, sender: str, to: str, body: str) -> str:
        """``POST /Accounts/{sid}/Messages.json``; the new message's SID."""
        reply = await self._call(
            "POST", f"{self._account}/Messages.json", data={"From": sender, "To": to, "Body": body}
        )
        self.sent += 1
        return str(reply.get("sid", ""))

    async def media(self, url: str) -> tuple[bytes, str]:
        """An MMS attachment (``MediaUrlN``) and its content type, at most MAX_MEDIA_BYTES."""
        try:
            async with self.session.get(url) as resp:
                if resp.status >= 400:
                    raise TwilioError(resp.status, None, f"media download refused: {resp.reason}")
                try:
                    data = await read_limited(resp.content, MAX_MEDIA_BYTES)
                except TooLarge:
                    raise TwilioError(413, None, "media larger than 5 MB") from None
                return data, resp.headers.get("Content-Type", "application/octet-stream")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(f"cannot reach Twilio: {exc}") from exc

    async def _call(
        self, method: str, url: str, data: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            async with self.session.request(method, url, data=data) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = {}
                if not isinstance(body, dict):
                    body = {}
                if resp.status < 400:
                    return body
                raise _error(resp.status, body, resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(
                f"cannot reach Twilio: {exc or type(exc).__name__}"
            ) from exc


def _error(status: int, body: dict[str, Any], retry_after: str | None) -> Exception:
    code = body.get("code")
    code = code if isinstance(code, int) else None
    message = str(body.get("message") or "no message")
    if status == 429 or code == 20429:
        try:
            wait = float(retry_after) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        return RetryAfter(wait)
    if status >= 500:
        return TransientDeliveryError(f"Twilio {status}: {message}")
    return TwilioError(status, code, message)
