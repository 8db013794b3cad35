"""matrix-nio's ``AsyncClient`` with its answers made ours: login, /sync, send, media.

nio returns error responses instead of raising; here every refused call raises
:class:`MatrixError` (the errcode, the message, ``retry_after_ms``), and the calls that deliver
map it to the shared delivery errors (:func:`map_error`), so the rate gate waits out an
``M_LIMIT_EXCEEDED`` for exactly ``retry_after_ms`` and repeats the refused call.

nio's own retrying is switched off (``max_limit_exceeded=0``, ``max_timeouts=0``): it would
sleep inside a call, out of sight of the gate (and of stop()), and retry timeouts forever.
Every call is bounded by ``request_timeout``; /sync by its long-poll time plus a margin.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from nio import AsyncClient, AsyncClientConfig
from nio.responses import (
    DownloadError,
    ErrorResponse,
    JoinError,
    LoginError,
    RoomSendError,
    SyncError,
    SyncResponse,
    UploadError,
    WhoamiError,
)

from hermes_gateway.delivery.errors import (
    DeliveryError,
    EditFailed,
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
)

__all__ = ["REQUEST_TIMEOUT", "MatrixClient", "MatrixError", "map_error"]

REQUEST_TIMEOUT = 30.0
"""Upper bound for one call other than /sync."""
SYNC_MARGIN = 15.0
"""Seconds a /sync may take beyond the long-poll time it asked for."""

Op = Literal["send", "edit", "read"]

_AUTH_ERRORS = frozenset(
    {"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_FORBIDDEN", "M_USER_DEACTIVATED"}
)


@dataclass
class MatrixError(Exception):
    """A call the homeserver refused, as it described it."""

    errcode: str
    message: str
    retry_after_ms: int | None = None
    http_status: int | None = None

    def __str__(self) -> str:
        return f"{self.errcode or self.http_status}: {self.message}"

    @property
    def rate_limited(self) -> bool:
        return self.errcode == "M_LIMIT_EXCEEDED" or self.http_status == 429

    @property
    def auth(self) -> bool:
        """The token (or password) itself was refused."""
        return self.errcode in _AUTH_ERRORS or self.http_status == 401


def _error(resp: ErrorResponse) -> MatrixError:
    transport = getattr(resp, "transport_response", None)
    status = getattr(transport, "status", None)
    return MatrixError(str(resp.status_code or ""), resp.message, resp.retry_after_ms, status)


def map_error(exc: MatrixError, op: Op) -> DeliveryError:
    """What a refused call means for the shared delivery code."""
    if exc.rate_limited:
        return RetryAfter((exc.retry_after_ms or 1000) / 1000)
    if exc.http_status is not None and exc.http_status >= 500:
        return TransientDeliveryError(f"Matrix server error {exc}")
    if op == "edit" and exc.errcode in ("M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON"):
        return EditFailed(f"cannot edit ({exc})")
    if exc.errcode in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_TOKEN"):
        return PermanentDeliveryError(f"Matrix refused ({exc})")
    return DeliveryError(f"Matrix rejected the request ({exc})")


class MatrixClient:
    """The calls the adapter makes, on one nio client.

    Args:
        homeserver: The homeserver's base URL (MATRIX_HOMESERVER).
        user_id: ``@bot:server``; needed for a password login, learned from the token otherwise.
        device_id: The device to use (a password login makes a new one without it).
    """

    def __init__(self, homeserver: str, user_id: str = "", device_id: str = "") -> None:
        config = AsyncClientConfig(
            max_limit_exceeded=0,
            max_timeouts=0,
            request_timeout=REQUEST_TIMEOUT,
            encryption_enabled=False,
            store_sync_tokens=False,
        )
        self.limited = 0
        """Calls the homeserver refused with M_LIMIT_EXCEEDED (for the log and tests)."""
        self.nio = AsyncClient(
            homeserver.rstrip("/"), user_id, device_id=device_id or None, config=config
        )

    @property
    def user_id(self) -> str:
        return str(self.nio.user_id or "")

    async def close(self) -> None:
        await self.nio.close()

    # --- login ------------------------------------------------------------------------

    async def use_token(self, token: str) -> str:
        """Adopt an access token and check it (``/account/whoami``); the user id it is for."""
        self.nio.access_token = token
        resp = await self.nio.whoami()
        if isinstance(resp, WhoamiError):
            raise _error(resp)
        self.nio.user_id = resp.user_id
        if resp.device_id:
            self.nio.device_id = resp.device_id
        return str(resp.user_id)

    async def login(self, password: str, device_name: str = "Hermes") -> str:
        """Log in with a password; the user id logged in."""
        resp = await self.nio.login(password=password, device_name=device_name)
        if isinstance(resp, LoginError):
            raise _error(resp)
        return str(resp.user_id)

    # --- sync -------------------------------------------------------------------------

    async def sync(
        self, since: str | None, timeout: float, sync_filter: dict[str, Any]
    ) -> SyncResponse:
        """One /sync (long-polling ``timeout`` seconds); nio's room state is updated from it."""
        async with asyncio.timeout(timeout + SYNC_MARGIN):
            resp = await self.nio.sync(
                timeout=int(timeout * 1000), since=since, sync_filter=sync_filter
            )
        if isinstance(resp, SyncError):
            raise _error(resp)
        return resp

    async def joined_rooms(self) -> set[str]:
        resp = await self._call(self.nio.joined_rooms())
        if isinstance(resp, ErrorResponse):
            raise _error(resp)
        return set(resp.rooms)

    async def joined_members(self, room_id: str) -> list[str]:
        resp = await self._call(self.nio.joined_members(room_id))
        if isinstance(resp, ErrorResponse):
            raise _error(resp)
        return [m.user_id for m in resp.members]

    async def room_name(self, room_id: str) -> str:
        """The room's ``m.room.name`` ("" when it has none)."""
        resp = await self._call(self.nio.room_get_state_event(room_id, "m.room.name"))
        if isinstance(resp, ErrorResponse):
            return ""
        return str((resp.content or {}).get("name", ""))

    async def join(self, room_id: str) -> None:
        resp = await self._call(self.nio.join(room_id))
        if isinstance(resp, JoinError):
            raise _error(resp)

    async def messages_back(
        self, room_id: str, start: str, end: str, limit: int = 100
    ) -> tuple[list[dict[str, Any]], str]:
        """One page of a room's events going back from token ``start`` towards ``end``:
        the events oldest first, and the token to go on from ("" at ``end``)."""
        resp = await self._call(self.nio.room_messages(room_id, start=start, end=end, limit=limit))
        if isinstance(resp, ErrorResponse):
            raise _error(resp)
        events = [e.source for e in reversed(resp.chunk) if isinstance(e.source, dict)]
        return events, str(resp.end or "")

    # --- delivery ---------------------------------------------------------------------

    async def _call(self, coro: Any) -> Any:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            return await coro

    async def deliver(self, op: Op, coro: Any) -> Any:
        """Run a delivering call; its failures as delivery errors."""
        try:
            resp = await self._call(coro)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(str(exc) or type(exc).__name__) from exc
        if isinstance(resp, ErrorResponse):
            error = _error(resp)
            if error.rate_limited:
                self.limited += 1
            raise map_error(error, op)
        return resp

    async def send(self, room_id: str, content: dict[str, Any], op: Op = "send") -> str:
        """Send an ``m.room.message``; its event id."""
        resp = await self.deliver(op, self.nio.room_send(room_id, "m.room.message", content))
        if isinstance(resp, RoomSendError):  # pragma: no cover - deliver raised already
            raise map_error(_error(resp), op)
        return str(resp.event_id)

    async def upload(self, data: bytes, content_type: str, name: str) -> str:
        """Upload bytes to the media repository; the ``mxc://`` URI."""
        resp, _keys = await self.deliver(
            "send",
            self.nio.upload(
                lambda *_: data, content_type=content_type, filename=name, filesize=len(data)
            ),
        )
        if isinstance(resp, UploadError):  # pragma: no cover - deliver raised already
            raise map_error(_error(resp), "send")
        return str(resp.content_uri)

    async def download(self, mxc: str, max_bytes: int) -> bytes:
        """A media file's bytes (refused past ``max_bytes``)."""
        resp = await self.deliver("read", self.nio.download(mxc=mxc))
        if isinstance(resp, DownloadError):  # pragma: no cover
            raise map_error(_error(resp), "read")
        body = resp.body if isinstance(resp.body, bytes) else b""
        if len(body) > max_bytes:
            raise DeliveryError(f"{mxc} is larger than {max_bytes} bytes")
        return body

    async def typing(self, room_id: str, on: bool, timeout_ms: int = 6000) -> None:
        await self.deliver("send", self.nio.room_typing(room_id, on, timeout_ms))
