"""Sending and editing Telegram messages through python-telegram-bot, in delivery's terms.

The shared delivery code (rate gate, stream consumer, tool progress) knows nothing about
Telegram: it calls :class:`TelegramTransport` and reacts to :mod:`hermes_gateway.delivery.errors`.
This module is where PTB's exceptions become those errors, where Markdown becomes Telegram
HTML (falling back to the same text without markup when Telegram refuses the entities), and
where a chat "address" string says whether an answer goes into a forum topic or a reply
thread. :class:`TypingTurn` adds the typing indicator to a streamed answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
    TimedOut,
)
from telegram.error import RetryAfter as TgRetryAfter

from hermes_gateway.delivery import (
    TELEGRAM_LIMIT,
    DeliveryError,
    EditFailed,
    FormattingRejected,
    MessageGone,
    MessageNotModified,
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
    markdown_to_telegram_html,
    utf16_len,
)

if TYPE_CHECKING:
    from telegram import Bot, Message

__all__ = [
    "ChatTarget",
    "TelegramTransport",
    "map_error",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

_NOT_MODIFIED = ("message is not modified",)
_BAD_MARKUP = ("can't parse entities", "can't find end", "unsupported start tag", "entity")
_DELETED = ("message to edit not found",)
_EDIT_GONE = (
    "message to edit not found",
    "message can't be edited",
    "there is no text in the message to edit",
    "message_id_invalid",
    "message identifier is not specified",
)
_CHAT_GONE = (
    "chat not found",
    "message thread not found",
    "topic_closed",
    "topic_deleted",
    "not enough rights",
    "have no rights",
    "bot was kicked",
    "bot is not a member",
)
"""A typing refresher never outlives this many seconds, whatever happens to its turn."""
_RETRY_DELAY = 0.5
"""Pause before repeating a request that never reached Telegram (connection refused)."""


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """Where a message goes: a chat, optionally a forum topic or a reply thread.

    Encoded as a string (``"42"``, ``"-100123:t7"`` for topic 7, ``"-100123:r55"`` for the
    reply thread under message 55) because the delivery layer keys its rate gate and its
    calls by one chat string.
    """

    chat_id: int | str
    """A numeric id, or ``@username`` of a public channel."""
    thread_id: int | None = None
    topic: bool = True
    """True: ``message_thread_id`` (forum topics, private topics); False: reply to the root."""

    def encode(self) -> str:
        if self.thread_id is None:
            return str(self.chat_id)
        return f"{self.chat_id}:{'t' if self.topic else 'r'}{self.thread_id}"

    @staticmethod
    def chat_of(chat_id: str) -> int | str:
        """A numeric chat id as int; anything else (``@channelname``) as given.

        Only plain ASCII digits count: ``str.isdigit`` also accepts full-width digits, and
        ``int("０7")`` would quietly address chat 7.
        """
        digits = chat_id[1:] if chat_id.startswith("-") else chat_id
        if digits.isascii() and digits.isdigit() and (digits == "0" or digits[0] != "0"):
            return int(chat_id)
        return chat_id

    @classmethod
    def parse(cls, chat: str) -> ChatTarget:
        head, _, tail = chat.partition(":")
        if not tail:
            return cls(cls.chat_of(head))
        return cls(cls.chat_of(head), int(tail[1:]), topic=tail[0] != "r")

    def send_kwargs(self) -> dict[str, Any]:
        if self.thread_id is None:
            return {}
        if self.topic:
            return {"message_thread_id": self.thread_id}
        return {
            "reply_parameters": ReplyParameters(
                message_id=self.thread_id, allow_sending_without_reply=True
            )
        }


def retry_after_seconds(exc: TgRetryAfter) -> float:
    """``RetryAfter.retry_after`` as seconds (PTB 22 returns an int or a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)


def _has(message: str, needles: tuple[str, ...]) -> bool:
    return any(n in message for n in needles)


def map_error(exc: TelegramError, *, editing: bool = False) -> DeliveryError:
    """Translate a PTB exception into the delivery layer's error types.

    PTB capitalises Telegram's description and lowercases the rest, so matching is done on
    the lowercased text.
    """
    text = str(exc).lower()
    if isinstance(exc, TgRetryAfter):
        return RetryAfter(retry_after_seconds(exc))
    if isinstance(exc, BadRequest):
        if _has(text, _NOT_MODIFIED):
            return MessageNotModified(str(exc))
        if _has(text, _BAD_MARKUP):
            return FormattingRejected(str(exc))
        if editing and _has(text, _DELETED):
            return MessageGone(str(exc))
        if editing and _has(text, _EDIT_GONE):
            return EditFailed(str(exc))
        if _has(text, _CHAT_GONE):
            return PermanentDeliveryError(str(exc))
        return EditFailed(str(exc)) if editing else DeliveryError(str(exc))
    if isinstance(exc, (Forbidden, ChatMigrated, InvalidToken)):
        return PermanentDeliveryError(str(exc))
    if isinstance(exc, (TimedOut, NetworkError)):
        return TransientDeliveryError(str(exc) or type(exc).__name__)
    return DeliveryError(str(exc) or type(exc).__name__)


def _never_reached(exc: BaseException) -> bool:
    """A connection that was refused or never opened: repeating cannot duplicate anything."""
    import httpx

    cause = exc.__cause__
    return isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


class TelegramTransport:
    """:class:`~hermes_gateway.delivery.MessageTransport` over a PTB ``Bot``."""

    limit = TELEGRAM_LIMIT

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.fallbacks = 0
        """How many times Telegram refused our HTML and the plain text was sent instead."""

    def measure(self, text: str) -> int:
        return utf16_len(text)

    async def send_text(self, chat: str, text: str) -> str:
        target = ChatTarget.parse(chat)
        html = markdown_to_telegram_html(text)
        try:
            message = await self._send(target, html, ParseMode.HTML)
        except FormattingRejected as exc:
            self.fallbacks += 1
            log.info("Telegram refused the markup (%s); sending plain text", exc)
            message = await self._send(target, text, None)
        return str(message.message_id)

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        target = ChatTarget.parse(chat)
        html = markdown_to_telegram_html(text)
        try:
            await self._edit(target, int(message_id), html, ParseMode.HTML)
        except FormattingRejected as exc:
            self.fallbacks += 1
            log.info("Telegram refused the markup of an edit (%s); editing as plain text", exc)
            await self._edit(target, int(message_id), text, None)

    async def send_typing(self, chat: str) -> None:
        target = ChatTarget.parse(chat)
        kwargs: dict[str, Any] = {}
        if target.thread_id is not None and target.topic:
            kwargs["message_thread_id"] = target.thread_id
        try:
            await self.bot.send_chat_action(target.chat_id, ChatAction.TYPING, **kwargs)
        except TelegramError as exc:
            raise map_error(exc) from exc

    async def _send(self, target: ChatTarget, text: str, mode: str | None) -> Message:
        for attempt in (1, 2):
            try:
                return await self.bot.send_message(
                    target.chat_id, text, parse_mode=mode, **target.send_kwargs()
                )
            except TelegramError as exc:
                if attempt == 1 and isinstance(exc, NetworkError) and _never_reached(exc):
                    await asyncio.sleep(_RETRY_DELAY)
                    continue
                raise map_error(exc) from exc
        raise AssertionError("unreachable")

    async def _edit(self, target: ChatTarget, message_id: int, text: str, mode: str | None) -> None:
        for attempt in (1, 2):
            try:
                await self.bot.edit_message_text(
                    text, chat_id=target.chat_id, message_id=message_id, parse_mode=mode
                )
                return
            except TelegramError as exc:
                # An edit is idempotent: repeating it after a network hiccup is always safe.
                if (
                    attempt == 1
                    and isinstance(exc, NetworkError)
                    and not isinstance(exc, BadRequest)
                ):
                    await asyncio.sleep(_RETRY_DELAY)
                    continue
                raise map_error(exc, editing=True) from exc
