"""Mattermost's REST API v4 over one aiohttp session, with its errors made ours.

Why aiohttp and not a driver: ``mattermostdriver`` (the usual one) is synchronous at heart
and unmaintained since 2021; the small async wrappers on PyPI (aiomatter, aiommost,
asyncmost) are one-person projects with a handful of releases and little use. The part of
the API a chat bot needs is a dozen JSON calls and one websocket, and aiohttp is already
ours (the API server, discord.py), so owning them costs less than trusting one of those.

Every call is bounded in time. Mattermost's error body is ``{"id", "message",
"status_code"}``; a 429 carries ``X-Ratelimit-Reset`` (seconds until the bucket refills)
and sometimes ``Retry-After``; both become :class:`~hermes_gateway.delivery.RetryAfter`
so the shared rate gate waits them out and repeats the refused call.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from hermes_gateway.delivery.errors import (
    DeliveryError,
    EditFailed,
    MessageGone,
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
)
from hermes_gateway.platforms.http_read import TooLarge, read_limited

__all__ = ["DEFAULT_POST_LIMIT", "REQUEST_TIMEOUT", "ApiError", "MattermostApi", "map_error"]

REQUEST_TIMEOUT = 30.0
"""Upper bound for one REST call."""
DEFAULT_POST_LIMIT = 16383
"""Characters per post on a server that does not say (Mattermost's default MaxPostSize)."""

Op = Literal["send", "edit", "read"]


@dataclass
class ApiError(Exception):
    """A non-2xx answer, as Mattermost described it."""

    status: int
    error_id: str
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.error_id}: {self.message}"


def _retry_after(headers: Any) -> float:
    """Seconds to wait after a 429: ``Retry-After``, else ``X-Ratelimit-Reset``, else 1."""
    for name in ("Retry-After", "X-Ratelimit-Reset"):
        raw = headers.get(name)
        if raw is not None:
            with contextlib.suppress(TypeError, ValueError):
                return max(0.0, float(raw))
    return 1.0


def map_error(exc: ApiError, op: Op) -> DeliveryError:
    """The delivery error saying what a refused call means for the shared delivery code."""
    if exc.status == 429:
        return RetryAfter(exc.retry_after if exc.retry_after is not None else 1.0)
    if exc.status >= 500:
        return TransientDeliveryError(f"Mattermost server error {exc}")
    if op == "edit" and exc.status == 404:
        return MessageGone(f"post deleted ({exc})")
    if op == "edit" and exc.status in (400, 403):
        return EditFailed(f"cannot edit ({exc})")
    if exc.status in (401, 403, 404):
        return PermanentDeliveryError(f"Mattermost refused ({exc})")
    return DeliveryError(f"Mattermost rejected the request ({exc})")


class MattermostApi:
    """The calls the adapter makes, on one session with the bot's token.

    Args:
        url: The server's base URL (``MATTERMOST_URL``), without ``/api/v4``.
        token: A bot or personal access token.
        timeout: Seconds for one call.
    """

    def __init__(self, url: str, token: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.base = url.rstrip("/")
        self.api = f"{self.base}/api/v4"
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=64)
            self._session = aiohttp.ClientSession(headers=self._headers, connector=connector)
        return self._session

    @property
    def websocket_url(self) -> str:
        base = self.api.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/websocket"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One JSON call; raises :class:`ApiError` for any non-2xx answer."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self.session.request(
            method, f"{self.api}{path}", timeout=timeout, **kwargs
        ) as resp:
            body = await resp.read()
            if resp.status >= 400:
                raise self._error(resp.status, resp.headers, body)
            if not body:
                return None
            if resp.content_type == "application/json":
                return json.loads(body)
            return body

    @staticmethod
    def _error(status: int, headers: Any, body: bytes) -> ApiError:
        error_id, message = "", body[:200].decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            data = json.loads(body)
            error_id, message = str(data.get("id", "")), str(data.get("message", message))
        retry = _retry_after(headers) if status == 429 else None
        return ApiError(status, error_id, message, retry)

    async def call(self, op: Op, method: str, path: str, **kwargs: Any) -> Any:
        """A call whose failure is a delivery error (for sends, edits and downloads)."""
        try:
            return await self._request(method, path, **kwargs)
        except ApiError as exc:
            raise map_error(exc, op) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(str(exc) or type(exc).__name__) from exc

    # --- the calls ----------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        """The bot's own user; raises :class:`ApiError` (401 for a bad token)."""
        data: dict[str, Any] = await self._request("GET", "/users/me")
        return data

    async def post_limit(self) -> int:
        """The server's ``MaxPostSize`` where the client config exposes it, else the default."""
        with contextlib.suppress(ApiError, aiohttp.ClientError, OSError, TimeoutError):
            data = await self._request("GET", "/config/client", params={"format": "old"})
            if isinstance(data, dict):
                with contextlib.suppress(TypeError, ValueError):
                    size = int(data.get("MaxPostSize", 0))
                    if size > 0:
                        return size
        return DEFAULT_POST_LIMIT

    async def create_post(
        self,
        channel_id: str,
        message: str,
        *,
        root_id: str = "",
        file_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"channel_id": channel_id, "message": message}
        if root_id:
            body["root_id"] = root_id
        if file_ids:
            body["file_ids"] = file_ids
        data: dict[str, Any] = await self.call("send", "POST", "/posts", json=body)
        return data

    async def patch_post(self, post_id: str, message: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call(
            "edit", "PUT", f"/posts/{post_id}/patch", json={"message": message}
        )
        return data

    async def upload_file(self, channel_id: str, name: str, data: bytes) -> str:
        """Upload one file into ``channel_id``; its id, to attach to a post."""
        form = aiohttp.FormData()
        form.add_field("channel_id", channel_id)
        form.add_field("files", data, filename=name, content_type="application/octet-stream")
        result = await self.call("send", "POST", "/files", data=form)
        infos = result.get("file_infos") if isinstance(result, dict) else None
        if not infos:
            raise DeliveryError("Mattermost stored no file")
        return str(infos[0]["id"])

    async def file_info(self, file_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("read", "GET", f"/files/{file_id}/info")
        return data

    async def download(self, file_id: str, max_bytes: int) -> bytes:
        """A file's bytes, refused past ``max_bytes`` without reading the rest."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self.session.get(f"{self.api}/files/{file_id}", timeout=timeout) as resp:
                if resp.status >= 400:
                    raise map_error(
                        self._error(resp.status, resp.headers, await resp.read()), "read"
                    )
                return await read_limited(resp.content, max_bytes)
        except TooLarge:
            raise DeliveryError(f"file {file_id} is larger than {max_bytes} bytes") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(str(exc) or type(exc).__name__) from exc

    async def channel(self, channel_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("read", "GET", f"/channels/{channel_id}")
        return data

    async def user(self, user_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("read", "GET", f"/users/{user_id}")
        return data

    async def my_channels(self) -> list[dict[str, Any]]:
        """Every channel the bot is a member of, in all its teams (DMs included)."""
        teams = await self.call("read", "GET", "/users/me/teams") or []
        found: dict[str, dict[str, Any]] = {}
        for team in teams:
            chans = await self.call("read", "GET", f"/users/me/teams/{team['id']}/channels")
            for chan in chans or []:
                found[str(chan["id"])] = chan
        return list(found.values())

    async def posts_since(self, channel_id: str, since_ms: int) -> list[dict[str, Any]]:
        """Posts of a channel created or changed after ``since_ms``, oldest first."""
        data = await self.call(
            "read", "GET", f"/channels/{channel_id}/posts", params={"since": str(since_ms)}
        )
        posts = (data or {}).get("posts") or {}
        order = [pid for pid in (data or {}).get("order") or [] if pid in posts]
        rank = {pid: i for i, pid in enumerate(reversed(order))}  # "order" is newest first
        return sorted(
            posts.values(),
            key=lambda p: (p.get("create_at", 0), rank.get(p.get("id"), -1)),
        )

    async def typing(self, channel_id: str, parent_id: str = "") -> None:
        body = {"channel_id": channel_id, "parent_id": parent_id}
        await self.call("send", "POST", "/users/me/typing", json=body)
