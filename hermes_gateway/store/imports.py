"""Writing history that was made elsewhere: sessions with their own times, and the ledger.

``hermes import hermes-agent`` brings in sessions, jobs, pairings and a personality from a
Hermes Agent home. Two things the ordinary store calls cannot do are here:

* a session and its messages keep the times they had over there (the ordinary calls stamp
  "now"), are stored as ended (an import never takes over a chat's live session), and a
  title that is already used here gets a suffix instead of failing the whole import;
* the **ledger** (``import_ledger``, migration 9) remembers each foreign item and how far it
  was read, so running the import again brings in nothing twice, only what is new since.

Every function taking a ``conn`` runs on the store's thread inside the caller's transaction
(:meth:`SessionStore.write_sync`), so an import is one transaction: all of it or none.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from hermes_gateway.text import clean_surrogates

from .records import MESSAGE_ROLES, StoredMessage
from .session_store import SessionStore

__all__ = [
    "LedgerEntry",
    "SessionSeed",
    "append_imported_messages",
    "kv_put",
    "session_exists",
    "imported_count",
    "insert_imported_session",
    "ledger_entries",
    "ledger_put",
]

_SQL_LEDGER = (
    "SELECT foreign_id, local_id, revision FROM import_ledger WHERE source = ? AND kind = ?"
)
_SQL_LEDGER_PUT = """
INSERT INTO import_ledger (source, kind, foreign_id, local_id, revision, imported_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (source, kind, foreign_id) DO UPDATE SET
    local_id = excluded.local_id, revision = excluded.revision, imported_at = excluded.imported_at
"""
_SQL_LEDGER_COUNT = "SELECT COUNT(*) FROM import_ledger WHERE substr(source, 1, ?) = ?"
_SQL_INSERT_SESSION = """
INSERT INTO sessions (id, session_key, platform, chat_type, chat_id, thread_id, user_id,
                      display_name, title, title_fold, created_at, updated_at, ended_at,
                      prompt_tokens, completion_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_SQL_INSERT_MESSAGE = """
INSERT INTO messages (session_id, role, content, tool_calls, tool_call_id, name,
                      prompt_tokens, completion_tokens, interrupted, meta, created_at)
VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?)
"""
_SQL_TOUCH = """
UPDATE sessions SET updated_at = MAX(updated_at, ?), ended_at = MAX(COALESCE(ended_at, 0), ?)
WHERE id = ?
"""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One foreign item already looked at: its id here (None: skipped) and how far it was read."""

    local_id: str | None
    revision: str | None


@dataclass
class SessionSeed:
    """A session as it was elsewhere: where it belongs here and the times it had there."""

    session_id: str
    session_key: str
    platform: str
    chat_type: str
    chat_id: str
    created_at: float
    ended_at: float
    thread_id: str | None = None
    user_id: str | None = None
    display_name: str | None = None
    title: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    messages: list[StoredMessage] = field(default_factory=list)
    """Messages with ``created_at`` set to when they were written there."""


def ledger_entries(conn: sqlite3.Connection, source: str, kind: str) -> dict[str, LedgerEntry]:
    """What of ``kind`` was already imported from ``source``, by foreign id."""
    rows = conn.execute(_SQL_LEDGER, (source, kind)).fetchall()
    return {r[0]: LedgerEntry(r[1], r[2]) for r in rows}


def ledger_put(
    conn: sqlite3.Connection,
    source: str,
    kind: str,
    foreign_id: str,
    local_id: str | None,
    revision: str | None,
    now: float,
) -> None:
    """Record (or move forward) one foreign item; ``local_id`` None marks it skipped."""
    conn.execute(_SQL_LEDGER_PUT, (source, kind, foreign_id, local_id, revision, now))


def _free_title(conn: sqlite3.Connection, title: str | None) -> tuple[str | None, str | None]:
    """The title, or with a suffix if another session has it (titles are unique here)."""
    if title is None or not clean_surrogates(title).strip():
        return None, None
    base = clean_surrogates(title).strip()
    candidate = base
    for n in range(1, 1000):
        fold = candidate.casefold()
        if conn.execute("SELECT 1 FROM sessions WHERE title_fold = ?", (fold,)).fetchone() is None:
            return candidate, fold
        candidate = f"{base} (Hermes Agent)" if n == 1 else f"{base} (Hermes Agent {n})"
    return None, None


def insert_imported_session(conn: sqlite3.Connection, seed: SessionSeed) -> int:
    """Create the (ended) session with its messages; returns how many messages were stored.

    Raises:
        ValueError: The session id is taken here already, or a message has an unknown role.
    """
    if session_exists(conn, seed.session_id):
        raise ValueError(f"a session {seed.session_id!r} exists already")
    title, fold = _free_title(conn, seed.title)
    conn.execute(
        _SQL_INSERT_SESSION,
        (
            seed.session_id,
            seed.session_key,
            seed.platform,
            seed.chat_type,
            seed.chat_id,
            seed.thread_id,
            seed.user_id,
            seed.display_name,
            title,
            fold,
            seed.created_at,
            max(seed.created_at, seed.ended_at),
            max(seed.created_at, seed.ended_at),
            seed.prompt_tokens,
            seed.completion_tokens,
        ),
    )
    return append_imported_messages(conn, seed.session_id, seed.messages)


def append_imported_messages(
    conn: sqlite3.Connection, session_id: str, messages: list[StoredMessage]
) -> int:
    """Add messages (keeping their ``created_at``) and move the session's times to the last."""
    last = 0.0
    for m in messages:
        if m.role not in MESSAGE_ROLES:
            raise ValueError(f"unknown message role {m.role!r}")
        created = float(m.created_at or 0.0)
        last = max(last, created)
        conn.execute(
            _SQL_INSERT_MESSAGE,
            (
                session_id,
                m.role,
                None if m.content is None else clean_surrogates(m.content),
                _dumps(m.tool_calls) if m.tool_calls else None,
                m.tool_call_id,
                m.name,
                _dumps(m.meta) if m.meta else None,
                created,
            ),
        )
    if messages:
        conn.execute(_SQL_TOUCH, (last, last, session_id))
    return len(messages)


def session_exists(conn: sqlite3.Connection, session_id: str) -> bool:
    return conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None


def kv_put(conn: sqlite3.Connection, key: str, value: str) -> None:
    """:meth:`SessionStore.kv_set` inside the caller's transaction."""
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, clean_surrogates(value)),
    )


async def imported_count(store: SessionStore, source_prefix: str) -> int:
    """How many items were ever imported from sources starting with ``source_prefix``."""
    row = await store.read_sync(_count, source_prefix)
    return int(row)


def _count(conn: sqlite3.Connection, prefix: str) -> int:
    return int(conn.execute(_SQL_LEDGER_COUNT, (len(prefix), prefix)).fetchone()[0])


def _dumps(value: Any) -> str:
    return clean_surrogates(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
