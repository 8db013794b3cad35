"""signal-cli's receive envelopes, turned into MessageEvents.

A websocket frame in json-rpc mode is ``{"envelope": {...}, "account": "+49..."}`` (or
``{"error": "..."}``). The envelope names the sender (``sourceNumber``, ``sourceUuid``,
``sourceName``) and carries one of ``dataMessage`` (``message``, ``timestamp``, ``groupInfo``
with the group's ``groupId``, ``attachments``, ``mentions``, ``quote``, ``reaction``),
``editMessage`` (``targetSentTimestamp`` and the new ``dataMessage``), ``syncMessage`` (what
our own other devices did), ``receiptMessage``, ``typingMessage`` or ``storyMessage``.

A DM's session is the sender; a group's is the group (``group.<base64 of groupId>``, the form
``/v2/send`` takes), answered only where SIGNAL_GROUP_ALLOWED_USERS names it (or ``*``), as
in Hermes Agent, and, with SIGNAL_REQUIRE_MENTION, only when the bot is mentioned. A message is
identified by its author and timestamp: a frame delivered twice (after a reconnect) is taken
once.
"""

from __future__ import annotations

import base64
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from hermes_gateway.config import SignalConfig
from hermes_gateway.models import MessageEvent, SessionSource

__all__ = ["Attachment", "Incoming", "SignalInbound", "group_recipient"]

log = logging.getLogger(__name__)

MENTION_MARK = "\ufffc"
SEEN_LIMIT = 10_000


def group_recipient(group_id: str) -> str:
    """The ``/v2/send`` recipient of a group whose envelopes carry ``groupId``."""
    return "group." + base64.b64encode(group_id.encode()).decode()


@dataclass(frozen=True)
class Attachment:
    attachment_id: str
    content_type: str
    file_name: str | None
    size: int


@dataclass
class Incoming:
    event: MessageEvent
    attachments: list[Attachment] = field(default_factory=list)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


class SignalInbound:
    """Which envelopes are messages for the bot, and what they become."""

    def __init__(self, cfg: SignalConfig, platform: str) -> None:
        self.cfg = cfg
        self.platform = platform
        self.own_uuid = ""
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    def group_allowed(self, group_id: str, recipient: str) -> bool:
        allowed = {g.strip() for g in self.cfg.group_allowed_users if g.strip()}
        return "*" in allowed or group_id in allowed or recipient in allowed

    def parse(self, frame: dict[str, Any]) -> Incoming | None:
        envelope = _obj(frame.get("envelope"))
        if not envelope:
            return None
        account = str(frame.get("account", ""))
        if account and account != self.cfg.account:
            return None
        number = str(envelope.get("sourceNumber") or "")
        uuid = str(envelope.get("sourceUuid") or "")
        source = str(envelope.get("source") or "")
        author = number or uuid or source
        if not author or author == self.cfg.account or (uuid and uuid == self.own_uuid):
            return None  # our own messages (sync from another device of ours)
        if envelope.get("storyMessage") is not None and self.cfg.ignore_stories:
            return None
        data = _obj(envelope.get("dataMessage"))
        if not data:
            if envelope.get("editMessage") is not None:
                log.info(
                    "a Signal message was edited after it was sent; the edit is not a new turn"
                )
            return None
        if data.get("reaction") is not None or data.get("remoteDelete") is not None:
            return None
        timestamp = data.get("timestamp") or envelope.get("timestamp")
        if not isinstance(timestamp, int):
            return None
        message_id = f"{author}:{timestamp}"
        if not self.first_time(message_id):
            return None
        text = str(data.get("message") or "")
        mentions = [_obj(m) for m in _list(data.get("mentions")) if isinstance(m, dict)]
        mentioned = any(
            m.get("number") == self.cfg.account
            or (self.own_uuid and m.get("uuid") == self.own_uuid)
            for m in mentions
        )
        text = _render_mentions(text, mentions, self.cfg.account, self.own_uuid)
        name = str(envelope.get("sourceName") or author)
        group = _obj(data.get("groupInfo"))
        group_id = str(group.get("groupId") or "")
        if group_id:
            recipient = group_recipient(group_id)
            if not self.group_allowed(group_id, recipient):
                log.debug("Signal group %s is not in SIGNAL_GROUP_ALLOWED_USERS", group_id)
                return None
            src = SessionSource(
                platform=self.platform,
                chat_id=recipient,
                chat_type="group",
                user_id=author,
                user_name=name,
                chat_name=str(group.get("groupName") or "") or None,
            )
            addressed = mentioned or not self.cfg.require_mention
        else:
            src = SessionSource(
                platform=self.platform,
                chat_id=author,
                chat_type="dm",
                user_id=author,
                user_name=name,
                chat_name=name,
            )
            addressed = True
        quote = _obj(data.get("quote"))
        attachments = [
            Attachment(
                str(a.get("id", "")),
                str(a.get("contentType") or "application/octet-stream"),
                str(a["filename"]) if a.get("filename") else None,
                _int(a.get("size")),
            )
            for a in _list(data.get("attachments"))
            if isinstance(a, dict) and a.get("id")
        ]
        if not text.strip() and not attachments:
            return None
        event = MessageEvent(
            text=text.strip(),
            source=src,
            message_id=message_id,
            reply_to_id=str(quote["id"]) if quote.get("id") else None,
            mentioned=addressed,
        )
        return Incoming(event, attachments)


def _render_mentions(text: str, mentions: list[dict[str, Any]], account: str, own_uuid: str) -> str:
    """Signal puts U+FFFC where a mention is; the bot's own mention is dropped, others named."""
    if not mentions or MENTION_MARK not in text:
        return text
    for mention in sorted(mentions, key=lambda m: _int(m.get("start")), reverse=True):
        start, length = _int(mention.get("start")), _int(mention.get("length")) or 1
        if not 0 <= start < len(text):
            continue
        ours = mention.get("number") == account or (own_uuid and mention.get("uuid") == own_uuid)
        label = "" if ours else "@" + str(mention.get("name") or mention.get("number") or "someone")
        text = text[:start] + label + text[start + length :]
    return " ".join(text.split()) if "\n" not in text else text
