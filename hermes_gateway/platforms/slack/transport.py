"""Slack's half of the shared delivery code: ``chat.postMessage``, ``chat.update`` and file
uploads over slack_sdk's ``AsyncWebClient``.

The streaming, chunking, pacing and retry logic lives in :mod:`hermes_gateway.delivery`; this
module speaks the Web API and translates its answers into
:mod:`hermes_gateway.delivery.errors`: HTTP 429 (or ``error: ratelimited``) becomes
:class:`RetryAfter` with the ``Retry-After`` seconds, so the chat's rate gate waits exactly
that long and repeats the refused call (which did not take effect: no duplicate).

A chat target is ``channel`` or ``channel/thread_ts``: Slack threads are not channels, every
write names both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from hermes_gateway.delivery.errors import (
    DeliveryError,
    EditFailed,
    FormattingRejected,
    MessageGone,
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
)
from hermes_gateway.platforms.slack.mrkdwn import SLACK_LIMIT, measure, to_mrkdwn

__all__ = [
    "MAX_UPLOAD_BYTES",
    "MethodBudget",
    "SlackTransport",
    "join_target",
    "map_api_error",
    "split_target",
]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 30.0
MAX_UPLOAD_BYTES = 100 * 1024 * 1024

_GONE = {"message_not_found"}
_FROZEN = {"cant_update_message", "edit_window_closed", "not_authed_for_message"}
_PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "account_inactive",
    "invalid_auth",
    "token_revoked",
    "not_authed",
    "restricted_action",
    "missing_scope",
}
_FORMAT = {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text"}


def join_target(channel: str, thread_ts: str | None) -> str:
    return f"{channel}/{thread_ts}" if thread_ts else channel


def split_target(target: str) -> tuple[str, str | None]:
    channel, _, thread = target.partition("/")
    return channel, thread or None


def map_api_error(exc: SlackApiError, op: Literal["send", "edit"]) -> DeliveryError:
    """The delivery error that says what a Web API refusal means for us."""
    response = exc.response
    status = getattr(response, "status_code", 200)
    error = str(response.get("error", "")) if hasattr(response, "get") else ""
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        retry = 1.0
        with contextlib.suppress(TypeError, ValueError):
            retry = float(headers.get("Retry-After", headers.get("retry-after", retry)))
        return RetryAfter(retry)
    if status >= 500 or error in {"internal_error", "fatal_error", "service_unavailable"}:
        return TransientDeliveryError(f"Slack server error {status}: {error}")
    if op == "edit" and error in _GONE:
        return MessageGone(f"message deleted ({error})")
    if op == "edit" and error in _FROZEN:
        return EditFailed(f"cannot edit ({error})")
    if error in _FORMAT:
        return FormattingRejected(f"Slack refused the text ({error})")
    if error in _PERMANENT:
        return PermanentDeliveryError(f"Slack refused ({error})")
    return DeliveryError(f"Slack rejected the request ({error or status})")


@contextlib.asynccontextmanager
async def guard(op: Literal["send", "edit"], timeout: float) -> AsyncIterator[None]:
    """Bound a Web API call in time and translate slack_sdk / network errors."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except SlackApiError as exc:
        raise map_api_error(exc, op) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise TransientDeliveryError(str(exc) or type(exc).__name__) from exc


class MethodBudget:
    """A token bucket for one Web API method over the whole workspace (Slack's tiers).

    ``chat.update`` is a Tier 3 method (about 50 calls a minute per workspace, with bursts):
    many chats streaming at once would exceed it. Rather than wait for Slack's 429, an edit
    finding the bucket empty is refused here the same way (:class:`RetryAfter` with the time
    until the next token): the chat's rate gate waits, newer edits of the message replace the
    queued one, and nothing is sent twice.
    """

    def __init__(
        self, per_minute: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = max(per_minute, 1.0) / 60.0
        self.capacity = max(burst, 1.0)
        self._tokens = self.capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> float:
        """Take one call; 0.0 if allowed now, else the seconds until one is."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class SlackTransport:
    """:class:`~hermes_gateway.delivery.MessageTransport` over one ``AsyncWebClient``.

    Text goes out as mrkdwn; if Slack refuses it, the same text is sent once more as plain
    text (``mrkdwn: false``), so a formatting problem never loses an answer.
    """

    limit = SLACK_LIMIT

    def __init__(
        self,
        client: Callable[[], AsyncWebClient | None],
        *,
        timeout: float = REQUEST_TIMEOUT,
        updates: MethodBudget | None = None,
    ) -> None:
        self._client = client
        self.timeout = timeout
        self.updates = updates

    def measure(self, text: str) -> int:
        return measure(text)

    def _web(self) -> AsyncWebClient:
        client = self._client()
        if client is None:
            raise TransientDeliveryError("not connected to Slack")
        return client

    async def send_text(self, chat: str, text: str) -> str:
        channel, thread = split_target(chat)
        web = self._web()
        try:
            async with guard("send", self.timeout):
                resp = await web.chat_postMessage(
                    channel=channel, text=to_mrkdwn(text), thread_ts=thread, mrkdwn=True
                )
        except FormattingRejected:
            async with guard("send", self.timeout):
                resp = await web.chat_postMessage(
                    channel=channel, text=text, thread_ts=thread, mrkdwn=False
                )
        return str(resp["ts"])

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        channel, _ = split_target(chat)
        web = self._web()
        if self.updates is not None:
            wait = self.updates.take()
            if wait > 0:
                raise RetryAfter(wait)
        try:
            async with guard("edit", self.timeout):
                await web.chat_update(channel=channel, ts=message_id, text=to_mrkdwn(text))
        except FormattingRejected:
            async with guard("edit", self.timeout):
                await web.chat_update(channel=channel, ts=message_id, text=text)

    async def send_file(self, chat: str, path: Path, caption: str = "") -> str:
        """Upload one file (read off the loop) into the chat with an optional comment."""
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > MAX_UPLOAD_BYTES:
            raise DeliveryError(f"{path.name} is larger than the upload limit")
        channel, thread = split_target(chat)
        web = self._web()
        async with guard("send", self.timeout * 4):
            resp = await web.files_upload_v2(
                channel=channel,
                thread_ts=thread,
                file=data,
                filename=path.name,
                title=path.name,
                initial_comment=to_mrkdwn(caption) if caption else None,
            )
        files = resp.get("files") or [{}]
        return str(files[0].get("id", ""))
