"""Discord's half of the shared delivery code: send, edit, files and typing over discord.py.

The streaming, chunking, pacing and retry logic lives in :mod:`hermes_gateway.delivery` and
is shared with Telegram; this module only speaks discord.py and translates its exceptions
into :mod:`hermes_gateway.delivery.errors`, so the shared code can react to *what happened*
(rate limited, message gone, chat gone, network hiccup) without knowing the platform.

Channels are addressed with ``client.get_partial_messageable(id)``: it needs no cache and
no extra request, and works the same for DMs, guild channels and threads (a thread is a
channel on Discord).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Literal

import aiohttp
import discord

from hermes_gateway.delivery import DISCORD_LIMIT
from hermes_gateway.delivery.errors import (
    DeliveryError,
    EditFailed,
    MessageGone,
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
)

__all__ = [
    "MAX_UPLOAD_BYTES",
    "DiscordTransport",
    "guard",
    "map_http_error",
]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 60.0
"""Upper bound for one REST call, 429 waits inside discord.py included."""
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""Discord's upload limit for a server without boosts."""
TYPING_REFRESH = 8.0
"""Discord shows "typing" for 10 s per request; refresh a little before it fades."""

# Discord JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
_EDIT_GONE = {10008, 50005, 30046}
"""Unknown message, not our message, too many edits of an old message."""

_UNKNOWN_MESSAGE = 10008


ALLOWED_MENTIONS = discord.AllowedMentions(
    everyone=False, users=False, roles=False, replied_user=False
)
"""The model's text must never ping @everyone, a role or a user by accident."""


def map_http_error(exc: discord.HTTPException, op: Literal["send", "edit"]) -> DeliveryError:
    """The delivery error that says what a discord.py ``HTTPException`` means for us."""
    status, code = exc.status, exc.code
    if status == 429:
        retry = 1.0
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        with contextlib.suppress(TypeError, ValueError):
            retry = float(headers.get("Retry-After", retry))
        return RetryAfter(retry)
    if status >= 500:
        return TransientDeliveryError(f"Discord server error {status}: {exc.text}")
    if op == "edit" and (status == 404 or code == _UNKNOWN_MESSAGE):
        return MessageGone(f"message deleted ({status}/{code}): {exc.text}")
    if op == "edit" and code in _EDIT_GONE:
        return EditFailed(f"cannot edit ({status}/{code}): {exc.text}")
    if status in (401, 403, 404):
        return PermanentDeliveryError(f"Discord refused ({status}/{code}): {exc.text}")
    return DeliveryError(f"Discord rejected the request ({status}/{code}): {exc.text}")


@contextlib.asynccontextmanager
async def guard(op: Literal["send", "edit"], timeout: float) -> AsyncIterator[None]:
    """Bound a REST call in time and translate discord.py / network errors."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except discord.RateLimited as exc:
        raise RetryAfter(exc.retry_after) from exc
    except discord.HTTPException as exc:
        raise map_http_error(exc, op) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise TransientDeliveryError(str(exc) or type(exc).__name__) from exc


class DiscordTransport:
    """:class:`~hermes_gateway.delivery.MessageTransport` over a (replaceable) discord.py client.

    Args:
        client: Returns the live client, or None while disconnected; the adapter builds a
            new client after discord.py gives up, so the transport must not keep one.
        timeout: Seconds for one REST call.
    """

    limit = DISCORD_LIMIT

    def __init__(
        self, client: Callable[[], discord.Client | None], *, timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self._client = client
        self.timeout = timeout

    def measure(self, text: str) -> int:
        """Discord counts characters (code points)."""
        return len(text)

    def _live(self) -> discord.Client:
        client = self._client()
        if client is None or client.is_closed():
            raise TransientDeliveryError("not connected to Discord")
        return client

    def _channel(self, chat: str) -> discord.PartialMessageable:
        return self._live().get_partial_messageable(int(chat))

    async def send_text(self, chat: str, text: str) -> str:
        """Post ``text`` (Discord renders Markdown itself) and return the message id."""
        channel = self._channel(chat)
        async with guard("send", self.timeout):
            message = await channel.send(content=text, allowed_mentions=ALLOWED_MENTIONS)
        return str(message.id)

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        partial = self._channel(chat).get_partial_message(int(message_id))
        async with guard("edit", self.timeout):
            await partial.edit(content=text, allowed_mentions=ALLOWED_MENTIONS)

    async def send_file(self, chat: str, path: Path, caption: str = "") -> str:
        """Upload one file (read off the loop) with an optional caption."""
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > MAX_UPLOAD_BYTES:
            raise DeliveryError(f"{path.name} is larger than Discord's upload limit")
        channel = self._channel(chat)
        file = discord.File(io.BytesIO(data), filename=path.name)
        async with guard("send", self.timeout):
            message = await channel.send(
                content=caption[: self.limit] or None, file=file, allowed_mentions=ALLOWED_MENTIONS
            )
        return str(message.id)

    async def typing(self, chat: str) -> None:
        """One typing request: Discord shows the indicator for 10 s or until we post."""
        client = self._live()
        async with guard("send", self.timeout):
            await client.http.send_typing(int(chat))
