"""Turning Matrix room events into the gateway's ``MessageEvent``.

Where the bot answers is decided here, because only Matrix knows what "addressed" means:

* direct chats (the invite said ``is_direct``, the bot's ``m.direct`` lists the room, or the
  room has two members): always;
* rooms: when the bot is mentioned (``m.mentions.user_ids``, a ``matrix.to`` pill in
  ``formatted_body``, or its id / ``@localpart`` in the text), in a ``free_response_rooms``
  room, in a thread the bot already answers in, or always when ``require_mention`` is off;
  with ``allowed_rooms`` set, other rooms are not for any session at all;
* a thread (``m.relates_to`` ``rel_type: m.thread``) is its own session, keyed by its root;
  so is a reply (``m.in_reply_to``) to a message: the answer goes into a thread under the
  message replied to. With ``auto_thread`` (Hermes' default) a mention in a room opens a
  thread under it.

Edits (``m.replace``), notices (bots talking), the bot's own events and encrypted events (no
E2EE here) are for nobody. Element treats ``/word`` as its own command, so ``!word`` is read
as ``/word`` when ``word`` is one of our commands (as Hermes Agent does).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import MatrixConfig, matrix_chat_id
from hermes_gateway.models import ChatType, MediaRef, MessageEvent, SessionSource

__all__ = ["MEDIA_TYPES", "MatrixInbound", "RoomInfo"]

log = logging.getLogger(__name__)

MEDIA_TYPES = frozenset({"m.image", "m.file", "m.audio", "m.video"})
_TEXT_TYPES = frozenset({"m.text", "m.emote"})
_FOLLOWED_MAX = 10_000
_SEEN_MAX = 16_384
_BANG = re.compile(r"^!([A-Za-z][A-Za-z0-9_-]*)(?=$|\s)(.*)$", re.DOTALL)


@dataclass(frozen=True)
class RoomInfo:
    """What the room an event came from is (from the sync's room state)."""

    direct: bool
    name: str = ""


SaveMedia = Callable[[dict[str, Any]], Awaitable[list[MediaRef]]]


class MatrixInbound:
    """Normalises events for one bot; keeps the threads it follows and the event ids seen."""

    def __init__(
        self,
        config: MatrixConfig,
        policy: AccessPolicy,
        save_media: SaveMedia,
        is_command: Callable[[str], bool] = lambda _name: False,
    ) -> None:
        self.config = config
        self.policy = policy
        self.save_media = save_media
        self.is_command = is_command
        self.user_id = ""
        self.display_name = ""
        self.followed: OrderedDict[str, None] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()

    # --- bookkeeping -----------------------------------------------------------------

    def first_time(self, event_id: str) -> bool:
        """True once per event id (marks it seen); the inbox drops repeats across restarts."""
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        return True

    def forget(self, event_id: str) -> None:
        """Take this event again when it comes again (it could not be stored)."""
        self._seen.pop(event_id, None)

    def follow(self, root: str) -> None:
        """Answer every message of this thread from now on."""
        self.followed[root] = None
        self.followed.move_to_end(root)
        while len(self.followed) > _FOLLOWED_MAX:
            self.followed.popitem(last=False)

    # --- mentions --------------------------------------------------------------------

    @property
    def localpart(self) -> str:
        return self.user_id.split(":", 1)[0].lstrip("@")

    def _mention_re(self) -> re.Pattern[str]:
        names = [re.escape(self.user_id)]
        if self.localpart:
            names.append(rf"@{re.escape(self.localpart)}(?![\w.=/-])")
        return re.compile(rf"(?<![\w@])(?:{'|'.join(names)})[:,]?[ \t]?", re.IGNORECASE)

    def addressed(self, content: dict[str, Any]) -> bool:
        if not self.user_id:
            return False
        mentions = content.get("m.mentions")
        if isinstance(mentions, dict):
            ids = mentions.get("user_ids")
            if isinstance(ids, list) and self.user_id in ids:
                return True
        html = content.get("formatted_body")
        if isinstance(html, str) and f"matrix.to/#/{self.user_id}" in unquote(html):
            return True
        body = content.get("body")
        return isinstance(body, str) and bool(self._mention_re().search(body))

    def clean_text(self, text: str) -> str:
        """The text without the bot's mention (``@bot``, its id, a pill's ``Name:``)."""
        if self.user_id:
            text = self._mention_re().sub("", text)
        if self.display_name:
            name = re.escape(self.display_name)
            text = re.sub(rf"^\s*{name}\s*[:,]\s*", "", text, flags=re.IGNORECASE)
        return text.strip()

    def commands(self, text: str) -> str:
        """``!cmd args`` as ``/cmd args`` when ``cmd`` is one of ours (Element keeps ``/``)."""
        match = _BANG.match(text)
        if match and self.is_command(match.group(1).lower()):
            return f"/{match.group(1).lower()}{match.group(2)}"
        return text

    # --- the event -------------------------------------------------------------------

    @staticmethod
    def relations(content: dict[str, Any]) -> tuple[str, str, str]:
        """``(rel_type, related event, replied-to event)`` of a message's ``m.relates_to``."""
        rel = content.get("m.relates_to")
        if not isinstance(rel, dict):
            return "", "", ""
        reply = rel.get("m.in_reply_to")
        reply_id = str(reply.get("event_id", "")) if isinstance(reply, dict) else ""
        return str(rel.get("rel_type") or ""), str(rel.get("event_id") or ""), reply_id

    def _in(self, room_id: str, rooms: list[str]) -> bool:
        return "*" in rooms or room_id in rooms

    async def normalize(
        self, room_id: str, event: dict[str, Any], room: RoomInfo
    ) -> MessageEvent | None:
        """The message for an event, or None when it is for no session at all."""
        if event.get("type") != "m.room.message" or event.get("sender") == self.user_id:
            return None
        content = event.get("content")
        if not isinstance(content, dict) or "redacted_because" in event.get("unsigned", {}):
            return None
        msgtype = content.get("msgtype")
        if msgtype not in _TEXT_TYPES and msgtype not in MEDIA_TYPES:
            return None  # notices (other bots), locations, unknown types
        rel_type, related, reply_to = self.relations(content)
        if rel_type == "m.replace":
            return None  # an edit of something already taken
        if not room.direct:
            allowed = self.config.allowed_rooms
            if allowed and not self._in(room_id, allowed):
                return None
        event_id = str(event.get("event_id", ""))
        root = related if rel_type == "m.thread" else reply_to
        addressed = self.addressed(content)
        if room.direct:
            mentioned = True
        else:
            mentioned = (
                addressed
                or not self.config.require_mention
                or self._in(room_id, self.config.free_response_rooms)
                or (bool(root) and root in self.followed)
            )
        chat_type: ChatType
        if root:
            chat_type = "thread"
        elif not room.direct and self.config.auto_thread and addressed:
            chat_type, root = "thread", event_id
        else:
            chat_type = "dm" if room.direct else "group"
        sender = str(event.get("sender", ""))
        source = SessionSource(
            "matrix",
            matrix_chat_id(room_id),
            chat_type,
            matrix_chat_id(root) if root else None,
            sender,
            sender.split(":", 1)[0].lstrip("@") or None,
            room.name or None,
        )
        allowed_user = await self.policy.is_allowed(source)
        if root and allowed_user and (addressed or room.direct):
            self.follow(root)
        media: list[MediaRef] = []
        text = ""
        if msgtype in MEDIA_TYPES:
            if mentioned and allowed_user:
                media = await self.save_media(content)
            caption = content.get("filename") and content.get("body")
            text = str(caption) if caption and caption != content.get("filename") else ""
        else:
            text = _without_reply_fallback(str(content.get("body", "")), bool(reply_to))
            if msgtype == "m.emote":
                text = f"* {source.user_name} {text}"
        text = self.clean_text(text) if not room.direct else text.strip()
        text = self.commands(text)
        return MessageEvent(
            text=text,
            source=source,
            message_id=event_id,
            reply_to_id=matrix_chat_id(reply_to) if reply_to else None,
            media=media,
            mentioned=mentioned,
        )


def _without_reply_fallback(body: str, is_reply: bool) -> str:
    """A reply's body without the quoted ``> `` lines older clients put before it."""
    if not is_reply or not body.startswith("> "):
        return body
    lines = body.split("\n")
    while lines and lines[0].startswith(">"):
        lines.pop(0)
    return "\n".join(lines).lstrip("\n")
