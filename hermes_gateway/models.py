"""The gateway's core data: where a message comes from and what it says.

Every platform adapter produces the same ``MessageEvent``; the runner never looks at a
platform's own update objects. Session keys are built here and only here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

ChatType = Literal["dm", "group", "channel", "thread"]

LOCAL_PLATFORM = "local"


@dataclass(frozen=True, slots=True)
class SessionSource:
    """Who wrote, and in which chat; enough to route the answer back."""

    platform: str
    chat_id: str
    chat_type: ChatType = "dm"
    thread_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    chat_name: str | None = None
    per_user: bool = False
    """The chat (a group, channel or thread) keeps one session per participant: the key
    names the user too (set by the runner from ``group_sessions_per_user`` /
    ``thread_sessions_per_user``, see :mod:`hermes_gateway.session_scope`)."""

    @property
    def session_key(self) -> str:
        return build_session_key(
            self.platform,
            self.chat_type,
            self.chat_id,
            self.thread_id,
            user_id=self.user_id if self.per_user else None,
        )

    @property
    def chat_key(self) -> str:
        """The key of the chat itself, shared by all its participants."""
        return build_session_key(self.platform, self.chat_type, self.chat_id, self.thread_id)

    @property
    def display_name(self) -> str:
        if self.per_user and self.user_name:  # whose session in the group
            return f"{self.chat_name or self.chat_id} · {self.user_name}"
        return self.chat_name or self.user_name or self.chat_id


USER_MARK = "@"
"""Starts a key's participant part (``...:@<user_id>``): no platform's chat or thread ids
contain it, so a per-user key never reads as a thread of another chat."""


def build_session_key(
    platform: str,
    chat_type: str,
    chat_id: str | int,
    thread_id: str | int | None = None,
    *,
    user_id: str | int | None = None,
) -> str:
    """The one way to name a conversation:
    ``{platform}:{chat_type}:{chat_id}[:{thread_id}][:@{user_id}]``.

    A channel and each of its threads are separate sessions, so the thread id is part of the
    key when present. In a group whose sessions are per participant, the user's id ends the
    key; the group's shared key (from before, or when configured shared) stays a prefix-free
    key of its own, so sessions stored under it keep opening.
    """
    for part, value in (("platform", platform), ("chat_type", chat_type)):
        if not value or ":" in str(value):
            raise ValueError(f"invalid {part} for a session key: {value!r}")
    key = f"{platform}:{chat_type}:{chat_id}"
    if thread_id not in (None, ""):
        key += f":{thread_id}"
    if user_id not in (None, ""):
        key += f":{USER_MARK}{user_id}"
    return key


def parse_session_key(key: str) -> tuple[str, str, str, str | None]:
    """Split a key built by :func:`build_session_key` back into its chat's parts (a
    participant part, if any, is left out: see :func:`key_user`)."""
    parts = key.split(":")
    if parts and parts[-1].startswith(USER_MARK):
        parts.pop()
    if len(parts) < 3:
        raise ValueError(f"not a session key: {key!r}")
    platform, chat_type = parts[0], parts[1]
    if len(parts) == 3:
        return platform, chat_type, parts[2], None
    return platform, chat_type, ":".join(parts[2:-1]), parts[-1]


def key_user(key: str) -> str | None:
    """The participant a per-user key belongs to (None for a chat's shared key)."""
    last = key.rsplit(":", 1)[-1]
    return last[len(USER_MARK) :] if last.startswith(USER_MARK) else None


MediaKind = Literal["image", "document", "audio", "video"]
"""What sort of file a :class:`MediaRef` is."""


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file a user sent, already saved under HERMES_HOME/media."""

    path: str
    kind: MediaKind = "document"
    mime_type: str | None = None
    file_name: str | None = None


@dataclass(slots=True)
class MessageEvent:
    """One inbound message, normalised by an adapter."""

    text: str
    source: SessionSource
    message_id: str | None = None
    reply_to_id: str | None = None
    media: list[MediaRef] = field(default_factory=list)
    mentioned: bool = True
    """Whether the bot was addressed (DMs always are; groups when mentioned or replied to)."""
    from_operator: bool = False
    """Sent by the person at the TUI into someone else's chat, as the bot."""
    roles: tuple[str, ...] = ()
    """The sender's role ids where the platform has roles (Discord)."""
    received_at: float = field(default_factory=time.time)
    inbox_id: int | None = None
    """Its row in the store's inbox once stored (set by the runner, not by adapters)."""

    @property
    def session_key(self) -> str:
        return self.source.session_key

    @property
    def is_command(self) -> bool:
        return self.text.startswith("/") and len(self.text) > 1 and not self.text[1].isspace()
