"""Activity over a time window, read from the store for ``/insights``.

One plain function run on the store's thread (``SessionStore.read_sync``), so the event loop
never waits on SQLite. Only sessions active in the window are read: ``sessions_updated``
finds them, ``messages_session`` their messages, so a home with a year of history costs what
the window holds, not what the database holds. ``session_key`` narrows it to one chat (a remote
user sees only their own chat; the operator sees everything).

Tokens are summed from the stored answers (each final answer carries its turn's usage), so a
turn removed by ``/undo`` no longer counts; the session totals ``/usage`` shows still do.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

__all__ = ["Activity", "PlatformActivity", "read_activity"]


@dataclass
class PlatformActivity:
    platform: str
    sessions: int = 0
    messages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Activity:
    """What happened since ``since`` (epoch seconds)."""

    since: float
    sessions: int = 0
    user_messages: int = 0
    answers: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    active_days: int = 0
    tools: list[tuple[str, int]] = field(default_factory=list)
    """The most used tools, most calls first."""
    platforms: list[PlatformActivity] = field(default_factory=list)
    """Busiest platform first."""

    @property
    def messages(self) -> int:
        return self.user_messages + self.answers


_SCOPE = """
FROM sessions s JOIN messages m ON m.session_id = s.id
WHERE s.updated_at >= :since AND m.created_at >= :since
  AND (:key IS NULL OR s.session_key = :key)
  AND (:platform IS NULL OR s.platform = :platform)
"""
_SQL_BY_PLATFORM = f"""
SELECT s.platform,
       count(DISTINCT s.id),
       sum(m.role = 'user'),
       sum(m.role = 'assistant' AND m.content IS NOT NULL AND m.content != ''),
       sum(m.role = 'tool'),
       sum(m.prompt_tokens),
       sum(m.completion_tokens)
{_SCOPE}
GROUP BY s.platform
"""
_SQL_TOOLS = f"""
SELECT coalesce(m.name, '?'), count(*)
{_SCOPE} AND m.role = 'tool'
GROUP BY m.name ORDER BY count(*) DESC, m.name LIMIT :top
"""
_SQL_DAYS = f"""
SELECT count(DISTINCT date(m.created_at, 'unixepoch', 'localtime'))
{_SCOPE} AND m.role = 'user'
"""


def read_activity(
    conn: sqlite3.Connection,
    since: float,
    session_key: str | None = None,
    platform: str | None = None,
    top: int = 8,
) -> Activity:
    """Activity since ``since``, all chats or one (``session_key``), one platform or all."""
    params = {"since": since, "key": session_key, "platform": platform, "top": top}
    activity = Activity(since=since)
    for row in conn.execute(_SQL_BY_PLATFORM, params):
        name, sessions, users, answers, tools, prompt, completion = (row[0], *map(_int, row[1:]))
        p = PlatformActivity(name, sessions, users + answers, prompt, completion)
        activity.platforms.append(p)
        activity.sessions += sessions
        activity.user_messages += users
        activity.answers += answers
        activity.tool_calls += tools
        activity.prompt_tokens += prompt
        activity.completion_tokens += completion
    activity.platforms.sort(key=lambda p: (-p.messages, p.platform))
    activity.tools = [(str(n), int(c)) for n, c in conn.execute(_SQL_TOOLS, params)]
    row = conn.execute(_SQL_DAYS, params).fetchone()
    activity.active_days = _int(row[0]) if row else 0
    return activity


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) else 0
