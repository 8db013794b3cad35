"""Activity over a time window, read from the store for ``/insights``.

Why it reads the way it does:

* One pass: a single query over the window's messages (sessions found by their
  ``updated_at`` index, a chat's by ``session_key``; their messages by ``messages_session``)
  returns one row per session, summed up here. Separate aggregates would each scan, and a
  GROUP BY over anything but the session sorts every message first.
* Off the store's thread: :func:`read_activity_at` opens its own read-only connection (WAL lets
  it read while the gateway writes) and is meant for ``asyncio.to_thread``, so a year of
  history being summed never holds up the turns' writes, nor the event loop.

Tokens are summed from the stored answers (each final answer carries its turn's usage), so a
turn removed by ``/undo`` no longer counts; the session totals ``/usage`` shows still do.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Activity", "PlatformActivity", "read_activity", "read_activity_at"]

BUSY_TIMEOUT_S = 5.0


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


def _sql(by_key: bool, by_platform: bool) -> str:
    where = "s.session_key = :key" if by_key else "s.updated_at >= :since"
    if by_platform:
        where += " AND s.platform = :platform"
    # One row per session: grouping by the session lets SQLite aggregate the messages as the
    # join walks them (a GROUP BY over other columns sorts every message first: 3-4x slower).
    return f"""
SELECT s.platform,
       sum(m.role = 'user'),
       sum(m.role = 'assistant' AND m.content IS NOT NULL AND m.content != ''),
       sum(m.prompt_tokens),
       sum(m.completion_tokens),
       group_concat(CASE WHEN m.role = 'tool' THEN coalesce(m.name, '?') END, char(31)),
       group_concat(DISTINCT CASE WHEN m.role = 'user'
                             THEN CAST((m.created_at + :utc_offset) / 86400 AS INTEGER) END)
FROM sessions s JOIN messages m ON m.session_id = s.id
WHERE {where} AND m.created_at >= :since
GROUP BY s.id
"""


_SQL = {(k, p): _sql(k, p) for k in (False, True) for p in (False, True)}
"""Fixed statements (the statement cache prepares each once)."""


def read_activity(
    conn: sqlite3.Connection,
    since: float,
    session_key: str | None = None,
    platform: str | None = None,
    top: int = 8,
) -> Activity:
    """Activity since ``since``, all chats or one (``session_key``), one platform or all.

    Active days are counted in the machine's current UTC offset.
    """
    params = {
        "since": since,
        "key": session_key,
        "platform": platform,
        "utc_offset": time.localtime().tm_gmtoff,
    }
    sql = _SQL[(session_key is not None, platform is not None)]
    activity = Activity(since=since)
    platforms: dict[str, PlatformActivity] = {}
    tools: Counter[str] = Counter()
    days: set[str] = set()
    for name, users, answers, prompt, completion, tool_names, user_days in conn.execute(
        sql, params
    ):
        p = platforms.get(name)
        if p is None:
            p = platforms[name] = PlatformActivity(name)
        p.sessions += 1
        p.messages += (users or 0) + (answers or 0)
        p.prompt_tokens += prompt or 0
        p.completion_tokens += completion or 0
        activity.user_messages += users or 0
        activity.answers += answers or 0
        if tool_names:
            tools.update(tool_names.split("\x1f"))
        if user_days:
            days.update(user_days.split(","))
    for p in platforms.values():
        activity.sessions += p.sessions
        activity.prompt_tokens += p.prompt_tokens
        activity.completion_tokens += p.completion_tokens
    activity.tool_calls = sum(tools.values())
    activity.tools = sorted(tools.items(), key=lambda t: (-t[1], t[0]))[:top]
    activity.platforms = sorted(platforms.values(), key=lambda p: (-p.messages, p.platform))
    activity.active_days = len(days)
    return activity


def read_activity_at(
    database: str | Path,
    since: float,
    session_key: str | None = None,
    platform: str | None = None,
    top: int = 8,
) -> Activity:
    """:func:`read_activity` over a read-only connection of its own (blocking: a thread)."""
    uri = f"{Path(database).resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        return read_activity(conn, since, session_key, platform, top)
    finally:
        conn.close()
