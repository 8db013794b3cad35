"""Plain records the session store reads and writes.

They are dataclasses, not ORM objects: the store fills them from one query and the rest of the
gateway (runner, commands, TUI panes via events) passes them around without touching SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Roles a stored message may have; the schema enforces the same set with a CHECK constraint.
MESSAGE_ROLES: frozenset[str] = frozenset({"user", "assistant", "tool", "system"})


@dataclass
class SessionRecord:
    """One conversation of one session key (a chat, or a thread of a chat).

    ``message_count`` and ``last_preview`` are not columns: the store computes them whenever it
    returns a record, so they can never drift from the messages themselves.
    """

    id: str
    session_key: str
    platform: str
    chat_type: str
    chat_id: str
    thread_id: str | None
    user_id: str | None
    display_name: str | None
    title: str | None
    created_at: float
    updated_at: float
    ended_at: float | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    message_count: int = 0
    last_preview: str = ""


@dataclass
class StoredMessage:
    """One chat-completions message as kept in the database.

    ``meta`` carries what the model never sees but the UI and commands need (who sent it from
    where, ...); ``to_openai`` leaves it out, except ``meta["media"]`` (files a user attached),
    which it turns into image parts and file paths (see :mod:`hermes_gateway.media`).
    """

    role: str
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    interrupted: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    session_id: str | None = None
    created_at: float | None = None

    def to_openai(self) -> dict[str, Any]:
        """Return the message as the chat-completions API expects it.

        Only an assistant message that calls tools may have ``content: None``; any other missing
        content is sent as ``""`` because the API rejects ``null`` there.
        """
        content: Any = self.content
        if content is None and not (self.role == "assistant" and self.tool_calls):
            content = ""
        if self.role == "user" and self.meta.get("media"):
            from hermes_gateway.media import build_user_content

            content = build_user_content(content or "", self.meta["media"])
        out: dict[str, Any] = {"role": self.role, "content": content}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass
class SearchHit:
    """One full-text search result: where it is and a snippet with ``[`` ``]`` around matches."""

    session_id: str
    session_key: str
    session_title: str | None
    message_id: int
    role: str
    snippet: str
    created_at: float
    display_name: str | None = None
    """The chat's name as its own session stored it (for a hit in an untitled session)."""
    ended_at: float | None = None
    """When the hit's session ended (an earlier session of its chat), or None if current."""
