"""The SQLite session store: sessions, their messages, full-text search, input history, kv.

Design choices, and why:

* One ``sqlite3`` connection per store, owned by one dedicated thread
  (:class:`.executor.SqliteWorker`); SQLite in WAL mode with ``synchronous=NORMAL``, foreign
  keys on and a 5 s busy timeout, so another process (the ``hermes pairing`` CLI, a second
  store) can read at any time and write by waiting its turn instead of failing with
  "database is locked".
* Every public call is ONE hop to that thread: the whole call (``BEGIN IMMEDIATE``, the
  statements, ``COMMIT`` or ``ROLLBACK``) runs there as one plain function on the connection.
  A hop costs far more than a cached statement, and a gateway turn does
  ``get_active_session`` and two ``append_messages``; one hop per call instead of four or five
  is most of the store's latency. The event loop never waits on SQLite.
* Statements are fixed strings, so ``sqlite3``'s statement cache prepares each once.
* Durability: ``append_messages`` returns only after ``COMMIT``. In WAL mode a committed
  transaction is in the WAL file before COMMIT returns, so a process killed right after the
  call keeps it; ``synchronous=NORMAL`` gives up only the last transactions on power loss,
  never consistency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hermes_gateway.random_ids import token_hex
from hermes_gateway.text import clean_surrogates

from ..text import one_line
from .executor import SqliteWorker
from .fts import build_match_query
from .migrations import MIGRATIONS, apply_migrations, get_user_version, latest_version
from .notes import NoteKind, TranscriptNote, drop_notes_from, get_notes, tx_add_note
from .records import MESSAGE_ROLES, SearchHit, SessionRecord, StoredMessage
from .writable import require_writable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The database file name under HERMES_HOME; no other program keeps a file of that name there.
DEFAULT_DB_NAME = "hermes_tui.db"
#: How long a write waits for another connection's write to finish before failing.
BUSY_TIMEOUT_S = 5.0
#: Input-history entries kept per scope.
INPUT_HISTORY_CAP = 1000
#: ``last_preview`` length limit, in characters.
PREVIEW_CHARS = 80


class SessionNotFoundError(LookupError):
    """No session has the given id."""


def default_db_path(hermes_home: str | Path) -> Path:
    """Where the gateway keeps its database: ``<HERMES_HOME>/hermes_tui.db``."""
    return Path(hermes_home) / DEFAULT_DB_NAME


# --------------------------------------------------------------------------------------------
# Helpers run on the worker thread (plain sqlite3, no awaits)

_clean = clean_surrogates


def _clean_opt(text: str | None) -> str | None:
    return None if text is None else _clean(text)


def _fold_title(title: str | None) -> tuple[str | None, str | None]:
    """``(title, folded key)``; a blank title means "no title"."""
    if title is None:
        return None, None
    title = _clean(title).strip()
    if not title:
        return None, None
    return title, title.casefold()


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _new_session_id(conn: sqlite3.Connection, now: float) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    while True:
        sid = f"{stamp}-{token_hex(3)}"
        if conn.execute(_SQL_SESSION_EXISTS, (sid,)).fetchone() is None:
            return sid


_SESSION_SELECT = """
SELECT s.id, s.session_key, s.platform, s.chat_type, s.chat_id, s.thread_id, s.user_id,
       s.display_name, s.title, s.created_at, s.updated_at, s.ended_at,
       s.prompt_tokens, s.completion_tokens,
       (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id),
       (SELECT substr(m.content, 1, 400) FROM messages m
         WHERE m.session_id = s.id AND m.role IN ('user', 'assistant')
           AND m.content IS NOT NULL AND m.content <> ''
         ORDER BY m.id DESC LIMIT 1)
FROM sessions s
"""
_SQL_GET_SESSION = _SESSION_SELECT + " WHERE s.id = ?"
_SQL_GET_ACTIVE = _SESSION_SELECT + " WHERE s.session_key = ? AND s.ended_at IS NULL"
_SQL_STALE_ACTIVE = (
    _SESSION_SELECT + " WHERE s.ended_at IS NULL AND s.updated_at < ?"
    " AND EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id)"
    " ORDER BY s.updated_at, s.id LIMIT ? OFFSET ?"
)
_SQL_FIND_TITLE = _SESSION_SELECT + " WHERE s.title_fold = ?"
_SQL_FIND_TITLE_PREFIX = (
    _SESSION_SELECT + " WHERE s.title_fold IS NOT NULL AND substr(s.title_fold, 1, ?) = ? LIMIT 2"
)
_SQL_LIST = {
    (False, False): _SESSION_SELECT + " ORDER BY s.updated_at DESC, s.id DESC LIMIT ?",
    (True, False): _SESSION_SELECT
    + " WHERE s.platform = ? ORDER BY s.updated_at DESC, s.id DESC LIMIT ?",
    (False, True): _SESSION_SELECT
    + " WHERE s.ended_at IS NULL ORDER BY s.updated_at DESC, s.id DESC LIMIT ?",
    (True, True): _SESSION_SELECT
    + " WHERE s.platform = ? AND s.ended_at IS NULL ORDER BY s.updated_at DESC, s.id DESC LIMIT ?",
}
_SQL_SESSIONS_OF_KEY = (
    _SESSION_SELECT + " WHERE s.session_key = ? ORDER BY s.created_at DESC, s.id DESC LIMIT ?"
)
_SQL_PAST_COUNTS = (
    "SELECT session_key, COUNT(*) FROM sessions WHERE ended_at IS NOT NULL GROUP BY session_key"
)
_SQL_SESSION_EXISTS = "SELECT 1 FROM sessions WHERE id = ?"
_SQL_SESSION_KEY = "SELECT session_key FROM sessions WHERE id = ?"
_SQL_TITLE_OWNER = "SELECT id FROM sessions WHERE title_fold = ? AND id <> ?"
_SQL_END_ACTIVE_OF_KEY = (
    "UPDATE sessions SET ended_at = ? WHERE session_key = ? AND ended_at IS NULL AND id <> ?"
)
_SQL_INSERT_SESSION = """
INSERT INTO sessions (id, session_key, platform, chat_type, chat_id, thread_id, user_id,
                      display_name, title, title_fold, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_SQL_END_SESSION = "UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL"
_SQL_REOPEN_SESSION = "UPDATE sessions SET ended_at = NULL, updated_at = ? WHERE id = ?"
_SQL_SET_TITLE = "UPDATE sessions SET title = ?, title_fold = ? WHERE id = ?"
_SQL_BUMP_SESSION = """
UPDATE sessions SET updated_at = ?, prompt_tokens = prompt_tokens + ?,
                    completion_tokens = completion_tokens + ?
WHERE id = ?
"""
_SQL_TOUCH_SESSION = "UPDATE sessions SET updated_at = ? WHERE id = ?"
_SQL_USAGE = "SELECT prompt_tokens, completion_tokens FROM sessions WHERE id = ?"

_MESSAGE_COLS = (
    "id, session_id, role, content, tool_calls, tool_call_id, name, prompt_tokens, "
    "completion_tokens, interrupted, meta, created_at"
)
_SQL_INSERT_MESSAGE = """
INSERT INTO messages (session_id, role, content, tool_calls, tool_call_id, name,
                      prompt_tokens, completion_tokens, interrupted, meta, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_SQL_GET_MESSAGES = f"SELECT {_MESSAGE_COLS} FROM messages WHERE session_id = ? ORDER BY id"
_SQL_GET_LAST_MESSAGES = (
    f"SELECT {_MESSAGE_COLS} FROM (SELECT * FROM messages WHERE session_id = ? "
    "ORDER BY id DESC LIMIT ?) ORDER BY id"
)
_SQL_LAST_USER_ID = "SELECT MAX(id) FROM messages WHERE session_id = ? AND role = 'user'"
_SQL_MESSAGES_FROM = (
    f"SELECT {_MESSAGE_COLS} FROM messages WHERE session_id = ? AND id >= ? ORDER BY id"
)
_SQL_DELETE_MESSAGES_FROM = "DELETE FROM messages WHERE session_id = ? AND id >= ?"

#: How many of the newest hits are ranked. BM25 has to score every row it orders, so ranking
#: all hits of a word in most of a million messages took a second; the newest hits are found
#: in rowid order without scoring. A query with fewer hits than this is ranked over all of
#: them; a very common word gets the best of its newest RANK_WINDOW hits.
RANK_WINDOW = 1000

_SEARCH_SCOPES = {
    (False, False): "",
    (True, False): " AND m.session_id = ?",
    (False, True): " AND m.session_id IN (SELECT id FROM sessions WHERE session_key = ?)",
    (True, True): (
        " AND m.session_id = ? AND m.session_id IN (SELECT id FROM sessions WHERE session_key = ?)"
    ),
}
#: The oldest rowid among the scope's newest RANK_WINDOW hits (FTS5 walks rowids backwards).
_SQL_SEARCH_WINDOW = {
    scope: (
        "SELECT min(r) FROM (SELECT messages_fts.rowid AS r FROM messages_fts"
        + (" JOIN messages m ON m.id = messages_fts.rowid" if where else "")
        + " WHERE messages_fts MATCH ?"
        + where
        + f" ORDER BY messages_fts.rowid DESC LIMIT {RANK_WINDOW})"
    )
    for scope, where in _SEARCH_SCOPES.items()
}
_SEARCH_SELECT = """
SELECT m.session_id, s.session_key, s.title, m.id, m.role,
       snippet(messages_fts, 0, '[', ']', '\u2026', 12), m.created_at,
       s.display_name, s.ended_at
FROM messages_fts
JOIN messages m ON m.id = messages_fts.rowid
JOIN sessions s ON s.id = m.session_id
WHERE messages_fts MATCH ? AND messages_fts.rowid >= ?
"""
_SEARCH_ORDER = " ORDER BY rank, m.created_at DESC, m.id DESC LIMIT ?"
#: Keyed by (filter by session id?, filter by session key?); fixed strings for the stmt cache.
_SQL_SEARCH = {
    scope: _SEARCH_SELECT + where + _SEARCH_ORDER for scope, where in _SEARCH_SCOPES.items()
}

_SQL_HISTORY_LAST = "SELECT text FROM input_history WHERE scope = ? ORDER BY id DESC LIMIT 1"
_SQL_HISTORY_INSERT = "INSERT INTO input_history (scope, text, created_at) VALUES (?, ?, ?)"
_SQL_HISTORY_TRIM = """
DELETE FROM input_history WHERE scope = ? AND id < (
    SELECT id FROM input_history WHERE scope = ? ORDER BY id DESC LIMIT 1 OFFSET ?)
"""
_SQL_HISTORY_GET = """
SELECT text FROM (SELECT id, text FROM input_history WHERE scope = ? ORDER BY id DESC LIMIT ?)
ORDER BY id
"""
_SQL_KV_GET = "SELECT value FROM kv WHERE key = ?"
_SQL_KV_SET = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
_SQL_KV_DELETE = "DELETE FROM kv WHERE key = ?"
_SQL_KV_PREFIX = "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key"


def kv_writer(key: str, value: str) -> Callable[[sqlite3.Connection], object]:
    """An ``also`` for a write method: set a kv entry in the same transaction."""
    return lambda conn: conn.execute(_SQL_KV_SET, (key, value))


def _session_from_row(row: Sequence[Any]) -> SessionRecord:
    return SessionRecord(
        id=row[0],
        session_key=row[1],
        platform=row[2],
        chat_type=row[3],
        chat_id=row[4],
        thread_id=row[5],
        user_id=row[6],
        display_name=row[7],
        title=row[8],
        created_at=row[9],
        updated_at=row[10],
        ended_at=row[11],
        prompt_tokens=row[12],
        completion_tokens=row[13],
        message_count=row[14],
        last_preview=one_line(row[15], PREVIEW_CHARS),
    )


def _message_from_row(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        id=row[0],
        session_id=row[1],
        role=row[2],
        content=row[3],
        tool_calls=json.loads(row[4]) if row[4] else None,
        tool_call_id=row[5],
        name=row[6],
        prompt_tokens=row[7],
        completion_tokens=row[8],
        interrupted=bool(row[9]),
        meta=json.loads(row[10]) if row[10] else {},
        created_at=row[11],
    )


def _fetch_session(conn: sqlite3.Connection, session_id: str) -> SessionRecord | None:
    row = conn.execute(_SQL_GET_SESSION, (session_id,)).fetchone()
    return None if row is None else _session_from_row(row)


def _require_session(conn: sqlite3.Connection, session_id: str) -> SessionRecord:
    record = _fetch_session(conn, session_id)
    if record is None:
        raise SessionNotFoundError(f"no session {session_id!r}")
    return record


def _check_title_free(conn: sqlite3.Connection, fold: str | None, session_id: str) -> None:
    if fold is None:
        return
    row = conn.execute(_SQL_TITLE_OWNER, (fold, session_id)).fetchone()
    if row is not None:
        raise ValueError(f"title already used by session {row[0]}")


def _tx_create_session(
    conn: sqlite3.Connection,
    session_key: str,
    platform: str,
    chat_type: str,
    chat_id: str,
    thread_id: str | None,
    user_id: str | None,
    display_name: str | None,
    title: str | None,
    also: Callable[[sqlite3.Connection], object] | None = None,
) -> SessionRecord:
    now = time.time()
    title, fold = _fold_title(title)
    sid = _new_session_id(conn, now)
    _check_title_free(conn, fold, sid)
    conn.execute(_SQL_END_ACTIVE_OF_KEY, (now, session_key, sid))
    conn.execute(
        _SQL_INSERT_SESSION,
        (
            sid,
            session_key,
            platform,
            chat_type,
            chat_id,
            thread_id,
            user_id,
            display_name,
            title,
            fold,
            now,
            now,
        ),
    )
    if also is not None:
        also(conn)
    return SessionRecord(
        id=sid,
        session_key=session_key,
        platform=platform,
        chat_type=chat_type,
        chat_id=chat_id,
        thread_id=thread_id,
        user_id=user_id,
        display_name=display_name,
        title=title,
        created_at=now,
        updated_at=now,
        ended_at=None,
    )


def _tx_start_session(
    conn: sqlite3.Connection,
    rows: list[tuple[Any, ...]],
    prompt_tokens: int,
    completion_tokens: int,
    create: tuple[Any, ...],
) -> tuple[SessionRecord, list[int]]:
    """A new session (see ``_tx_create_session``) and its first messages (rows whose session
    id and time are filled in here)."""
    record = _tx_create_session(conn, *create)
    now = record.created_at
    rows = [(record.id, *row[1:-1], now) for row in rows]
    ids = _tx_append(conn, record.id, rows, now, prompt_tokens, completion_tokens)
    record.prompt_tokens += prompt_tokens
    record.completion_tokens += completion_tokens
    return record, ids


def _tx_end_session(conn: sqlite3.Connection, session_id: str) -> None:
    if conn.execute(_SQL_END_SESSION, (time.time(), session_id)).rowcount == 0:
        if conn.execute(_SQL_SESSION_EXISTS, (session_id,)).fetchone() is None:
            raise SessionNotFoundError(f"no session {session_id!r}")


def _tx_activate_session(conn: sqlite3.Connection, session_id: str) -> SessionRecord:
    row = conn.execute(_SQL_SESSION_KEY, (session_id,)).fetchone()
    if row is None:
        raise SessionNotFoundError(f"no session {session_id!r}")
    now = time.time()
    conn.execute(_SQL_END_ACTIVE_OF_KEY, (now, row[0], session_id))
    conn.execute(_SQL_REOPEN_SESSION, (now, session_id))
    return _require_session(conn, session_id)


def _find_session(conn: sqlite3.Connection, name_or_id: str) -> SessionRecord | None:
    found = _fetch_session(conn, name_or_id)
    if found is not None:
        return found
    _, fold = _fold_title(name_or_id)
    if fold is None:
        return None
    row = conn.execute(_SQL_FIND_TITLE, (fold,)).fetchone()
    if row is not None:
        return _session_from_row(row)
    rows = conn.execute(_SQL_FIND_TITLE_PREFIX, (len(fold), fold)).fetchall()
    return _session_from_row(rows[0]) if len(rows) == 1 else None


def _tx_name_untitled(conn: sqlite3.Connection, session_id: str, title: str) -> bool:
    row = conn.execute("SELECT title FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None or row[0] is not None:
        return False
    _tx_set_title(conn, session_id, title)
    return True


def _tx_set_title(conn: sqlite3.Connection, session_id: str, title: str) -> None:
    title_or_none, fold = _fold_title(title)
    _check_title_free(conn, fold, session_id)
    if conn.execute(_SQL_SET_TITLE, (title_or_none, fold, session_id)).rowcount == 0:
        raise SessionNotFoundError(f"no session {session_id!r}")


def _tx_append(
    conn: sqlite3.Connection,
    session_id: str,
    rows: list[tuple[Any, ...]],
    now: float,
    prompt_tokens: int,
    completion_tokens: int,
    also: Callable[[sqlite3.Connection], object] | None = None,
) -> list[int]:
    # Session first: an unknown id is a clear error, not a foreign-key failure on the insert.
    cur = conn.execute(_SQL_BUMP_SESSION, (now, prompt_tokens, completion_tokens, session_id))
    if cur.rowcount == 0:
        raise SessionNotFoundError(f"no session {session_id!r}")
    ids: list[int] = []
    for row in rows:
        # lastrowid is typed int | None, but after a successful INSERT it is always the new id.
        ids.append(conn.execute(_SQL_INSERT_MESSAGE, row).lastrowid)  # type: ignore[arg-type]
    if also is not None:
        also(conn)
    return ids


_SQL_IMPORT_SESSION = """
INSERT INTO sessions (id, session_key, platform, chat_type, chat_id, thread_id, user_id,
                      display_name, title, title_fold, created_at, updated_at, ended_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_SQL_MESSAGES_SEQ = "SELECT seq FROM sqlite_sequence WHERE name = 'messages'"
_SQL_IMPORT_BUMP = """
UPDATE sessions SET updated_at = max(updated_at, ?), prompt_tokens = prompt_tokens + ?,
                    completion_tokens = completion_tokens + ?
WHERE id = ?
"""


def _tx_import_sessions(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    try:
        conn.executemany(_SQL_IMPORT_SESSION, rows)
    except sqlite3.IntegrityError as exc:
        # The unique indexes say which rule broke; name it in the caller's words.
        text = str(exc)
        if "session_key" in text:
            raise ValueError("two active (not ended) sessions for one session_key") from exc
        if "title_fold" in text:
            raise ValueError("a title is used by two sessions") from exc
        if "sessions.id" in text:
            raise ValueError("a session id is already in the store") from exc
        raise


def _tx_import_messages(
    conn: sqlite3.Connection,
    rows: list[tuple[Any, ...]],
    bumps: list[tuple[float, int, int, str]],
) -> list[int]:
    for bump in bumps:
        if conn.execute(_SQL_IMPORT_BUMP, bump).rowcount == 0:
            raise SessionNotFoundError(f"no session {bump[3]!r}")
    conn.executemany(_SQL_INSERT_MESSAGE, rows)
    # executemany inserts row after row in this one transaction, and AUTOINCREMENT hands out
    # max(sequence, rowid) + 1 each time, so the ids are the consecutive run ending at the
    # sequence's new value.
    last = int(conn.execute(_SQL_MESSAGES_SEQ).fetchone()[0])
    return list(range(last - len(rows) + 1, last + 1))


def _get_messages(
    conn: sqlite3.Connection, session_id: str, limit: int | None
) -> list[StoredMessage]:
    if limit is None:
        rows = conn.execute(_SQL_GET_MESSAGES, (session_id,)).fetchall()
    else:
        rows = conn.execute(_SQL_GET_LAST_MESSAGES, (session_id, max(limit, 0))).fetchall()
    return [_message_from_row(r) for r in rows]


def _tx_pop_last_turn(conn: sqlite3.Connection, session_id: str) -> list[StoredMessage]:
    first = conn.execute(_SQL_LAST_USER_ID, (session_id,)).fetchone()[0]
    if first is None:
        return []
    popped = [_message_from_row(r) for r in conn.execute(_SQL_MESSAGES_FROM, (session_id, first))]
    conn.execute(_SQL_DELETE_MESSAGES_FROM, (session_id, first))
    drop_notes_from(conn, session_id, first)
    conn.execute(_SQL_TOUCH_SESSION, (time.time(), session_id))
    return popped


def _search(
    conn: sqlite3.Connection,
    match: str,
    limit: int,
    session_id: str | None,
    session_key: str | None,
) -> list[SearchHit]:
    scope = (session_id is not None, session_key is not None)
    filters = tuple(v for v in (session_id, session_key) if v is not None)
    # Two steps: where the newest RANK_WINDOW hits of the scope begin (no scoring), then rank
    # only the hits from there on. Both filter by the scope, so another chat's hits never
    # take a place in the window.
    oldest = conn.execute(_SQL_SEARCH_WINDOW[scope], (match, *filters)).fetchone()[0]
    if oldest is None:
        return []
    rows = conn.execute(_SQL_SEARCH[scope], (match, oldest, *filters, limit)).fetchall()
    return [SearchHit(*row) for row in rows]


def _tx_add_history(conn: sqlite3.Connection, scope: str, text: str, cap: int) -> None:
    last = conn.execute(_SQL_HISTORY_LAST, (scope,)).fetchone()
    if last is not None and last[0] == text:
        return
    conn.execute(_SQL_HISTORY_INSERT, (scope, text, time.time()))
    conn.execute(_SQL_HISTORY_TRIM, (scope, scope, cap - 1))


def _enable_wal(conn: sqlite3.Connection) -> str:
    """Switch the file to WAL (once per file, it persists) and return the journal mode.

    Switching needs an exclusive lock and SQLite answers "database is locked" at once, without
    the busy handler, when another connection is opening the same new file at that moment
    (the gateway and the CLI starting together). So this waits itself, up to the busy timeout.
    It runs on the store's own thread, never on the event loop, so sleeping is fine.
    """
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while mode != "wal":
        try:
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
            continue
        if mode != "wal":  # in-memory or a file system without shared memory: use what we got
            break
    return mode


def _prepare(conn: sqlite3.Connection) -> int:
    """Set the connection's pragmas and migrate; returns the schema version."""
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    # Refuse a newer schema before changing anything in the file.
    current = get_user_version(conn)
    newest = latest_version(MIGRATIONS)
    if current > newest:
        apply_migrations(conn)  # raises SchemaVersionError with the explanation
    require_writable(conn, _db_name(conn))
    mode = _enable_wal(conn)
    if mode != "wal":
        log.warning("SQLite journal_mode is %s, not WAL (in-memory or unsupported FS)", mode)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return apply_migrations(conn)


def _db_name(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else ":memory:"


def check_database(path: str | Path) -> int:
    """Open, check and migrate the file on the calling thread, then close it (before a start).

    Raises what :meth:`SessionStore.open` would (``sqlite3.DatabaseError`` for a file that is
    not SQLite, SchemaVersionError, DatabaseReadOnlyError); returns the schema version.
    """
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        return _prepare(conn)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------


class SessionStore:
    """Async facade over one SQLite connection; see the module docstring for the design.

    Open with ``store = await SessionStore.open(path)`` (or ``async with await
    SessionStore.open(path) as store``) and ``await store.close()`` when done. All methods are
    safe to call concurrently from tasks of one event loop; writes are serialized.
    """

    #: Input-history entries kept per scope (a class attribute so a subclass can change it).
    history_cap: int = INPUT_HISTORY_CAP

    def __init__(self, db: SqliteWorker, path: str | Path, schema_version: int) -> None:
        """Use :meth:`open`; this only wires an already prepared connection."""
        self._db = db
        self._path = path
        self.schema_version: int = schema_version
        # Serializes write transactions: needed because transaction() spans several hops and
        # nothing else may BEGIN on this connection while it is open.
        self._write_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path) -> SessionStore:
        """Open (creating it and its parent folder if needed) and migrate the database.

        Args:
            path: The database file, usually ``default_db_path(hermes_home)``; ``":memory:"``
                works for throwaway stores.

        Raises:
            SchemaVersionError: The file was written by a newer Hermes.
        """
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await SqliteWorker.open(path, timeout=BUSY_TIMEOUT_S, name="sqlite-store")
        try:
            version = await db.run(_prepare)
        except BaseException:
            await db.close()
            raise
        return cls(db, path, version)

    async def close(self) -> None:
        """Close the connection (idempotent); a WAL checkpoint happens if we are the last."""
        if self._closed:
            return
        self._closed = True
        await self._db.close()

    async def __aenter__(self) -> SessionStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def path(self) -> str | Path:
        """The path the store was opened with."""
        return self._path

    @property
    def connection(self) -> SqliteWorker:
        """The store's connection (async, statement at a time), for feature modules' own tables.

        Read with it freely; write only inside :meth:`transaction` (or :meth:`write_sync`), since
        the connection is in autocommit mode and shared with the store's own transactions.
        """
        return self._db

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteWorker]:
        """``async with store.transaction() as conn:`` — statements between BEGIN IMMEDIATE/COMMIT.

        The store's own writes wait until the block ends; an exception (or cancellation) rolls
        the block back and propagates. Several awaits per statement make this slower than
        :meth:`write_sync`, which runs a whole function in one hop.
        """
        async with self._write_lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                # A cancelled await does not stop the statement queued on the store's thread
                # (BEGIN may still succeed after we were cancelled). The worker runs calls in
                # order, so this rollback runs after it, before the lock lets anyone else in.
                with contextlib.suppress(Exception):
                    await self._db.run(_rollback_if_open)
                raise

    async def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sqlite3_conn, *args)`` on the connection's thread, in one hop.

        For feature modules' hot reads. ``fn`` must not block on anything but SQLite and must
        not keep the connection.
        """
        return await self._db.run(fn, *args)

    async def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Like :meth:`read_sync`, with ``fn`` inside BEGIN IMMEDIATE ... COMMIT (rollback on error).

        Each call is a whole transaction in one job, and the store's thread runs jobs one at
        a time in order, so concurrent calls are queued together instead of each waiting for
        the one before to come back (at 32 API requests in flight, that wait, three times a
        request, was what bounded the gateway's throughput). Only an open
        :meth:`transaction` (several jobs) must not be entered: the call waits for it to end.
        """
        if self._write_lock.locked():
            async with self._write_lock:
                pass
        # Queued before this coroutine yields, so before a transaction() waiting for the lock
        # can queue its BEGIN. Calls queued together share one COMMIT (group commit, see
        # executor.py); each still returns only after it.
        return await self._db.run_tx(fn, *args)

    # ---- sessions ---------------------------------------------------------------------------

    async def get_active_session(self, session_key: str) -> SessionRecord | None:
        """The session new messages of ``session_key`` go to, or None if it has none."""
        row = await self._db.run(_fetch_one, _SQL_GET_ACTIVE, (session_key,))
        return None if row is None else _session_from_row(row)

    async def create_session(
        self,
        session_key: str,
        *,
        platform: str,
        chat_type: str,
        chat_id: str,
        thread_id: str | None = None,
        user_id: str | None = None,
        display_name: str | None = None,
        title: str | None = None,
        also: Callable[[sqlite3.Connection], object] | None = None,
        messages: Sequence[StoredMessage] = (),
    ) -> SessionRecord:
        """Start a new session for the key, ending its active one in the same transaction.

        ``also(conn)`` runs in that transaction too (e.g. keeping why the old one ended), and
        so are ``messages`` stored, as :meth:`append_messages` would (a one-off API request's
        session and its messages: one hop to the store's thread instead of two).

        Raises:
            ValueError: ``title`` is already used by another session, or a message has an
                unknown role.
        """
        create = (
            session_key,
            platform,
            chat_type,
            chat_id,
            thread_id,
            user_id,
            display_name,
            title,
            also,
        )
        if not messages:
            return await self.write_sync(_tx_create_session, *create)
        rows, prompt_tokens, completion_tokens = _message_rows(None, messages, 0.0)
        record, ids = await self.write_sync(
            _tx_start_session, rows, prompt_tokens, completion_tokens, create
        )
        for m, mid in zip(messages, ids, strict=True):
            m.id = mid
            m.session_id = record.id
            m.created_at = record.created_at
        return record

    async def end_session(self, session_id: str) -> None:
        """Mark the session ended (no-op if it already is).

        Raises:
            SessionNotFoundError: No such session.
        """
        await self.write_sync(_tx_end_session, session_id)

    async def activate_session(self, session_id: str) -> SessionRecord:
        """Make the session the active one of its key again (``/resume``).

        Ends whatever else is active for that key, re-opens this one and bumps its
        ``updated_at`` so it lists first, all in one transaction.

        Raises:
            SessionNotFoundError: No such session.
        """
        return await self.write_sync(_tx_activate_session, session_id)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session with that id, or None."""
        return await self._db.run(_fetch_session, session_id)

    async def find_session(self, name_or_id: str) -> SessionRecord | None:
        """Resolve what a user typed after ``/resume``.

        Tries the exact id, then the exact title (case-insensitive), then a title prefix that
        exactly one session has. None when nothing, or more than one prefix match, fits.
        """
        return await self._db.run(_find_session, name_or_id)

    async def list_sessions(
        self, *, limit: int = 50, platform: str | None = None, include_ended: bool = True
    ) -> list[SessionRecord]:
        """Sessions, most recently updated first, with message counts and previews."""
        sql = _SQL_LIST[(platform is not None, not include_ended)]
        params: tuple[Any, ...] = (limit,) if platform is None else (platform, limit)
        rows = await self._db.run(_fetch_all, sql, params)
        return [_session_from_row(r) for r in rows]

    async def stale_active_sessions(
        self, before: float, *, limit: int = 500, offset: int = 0
    ) -> list[SessionRecord]:
        """Active sessions with messages last updated before ``before``, oldest first (reset
        candidates), a page of ``limit`` from ``offset``."""
        rows = await self._db.run(_fetch_all, _SQL_STALE_ACTIVE, (before, limit, offset))
        return [_session_from_row(r) for r in rows]

    async def sessions_of(self, session_key: str, *, limit: int = 200) -> list[SessionRecord]:
        """Every session of one chat (its current one and those ``/new`` ended), newest first."""
        rows = await self._db.run(_fetch_all, _SQL_SESSIONS_OF_KEY, (session_key, limit))
        return [_session_from_row(r) for r in rows]

    async def past_session_counts(self) -> dict[str, int]:
        """How many ended sessions each chat has (what the Sessions list folds under it)."""
        rows = await self._db.run(_fetch_all, _SQL_PAST_COUNTS, ())
        return {key: int(count) for key, count in rows}

    async def set_title(self, session_id: str, title: str) -> None:
        """Set (or, with a blank string, clear) the session's title.

        Raises:
            ValueError: Another session has that title, compared case-insensitively
                (``"title already used by session <id>"``).
            SessionNotFoundError: No such session.
        """
        await self.write_sync(_tx_set_title, session_id, title)

    async def name_untitled(self, session_id: str, title: str) -> bool:
        """Give the session ``title`` unless it has one: checked and set in one transaction,
        so an automatic title never overwrites one a person set meanwhile.

        Raises:
            ValueError: Another session has that title.
        """
        return await self.write_sync(_tx_name_untitled, session_id, title)

    async def usage_totals(self, session_id: str) -> tuple[int, int]:
        """``(prompt_tokens, completion_tokens)`` spent in the session.

        These are what was billed: ``pop_last_turn`` removes messages but not their usage.

        Raises:
            SessionNotFoundError: No such session.
        """
        row = await self._db.run(_fetch_one, _SQL_USAGE, (session_id,))
        if row is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        return int(row[0]), int(row[1])

    # ---- bulk import ------------------------------------------------------------------------

    async def import_sessions(self, records: Sequence[SessionRecord]) -> None:
        """Store whole sessions as they were (ids, times, ended or not, titles), in one
        transaction.

        For bringing history in from elsewhere (another Hermes' database, test homes): unlike
        :meth:`create_session` it keeps the given ``created_at`` / ``updated_at`` /
        ``ended_at`` and ends nothing. Token totals and message counts come from
        :meth:`import_messages`.

        Raises:
            ValueError: Two active sessions for one key (with each other or with the store),
                a title used twice (case-insensitively), or an id already stored; nothing is
                written.
        """
        rows: list[tuple[Any, ...]] = []
        for r in records:
            title, fold = _fold_title(r.title)
            rows.append(
                (
                    r.id,
                    r.session_key,
                    r.platform,
                    r.chat_type,
                    r.chat_id,
                    r.thread_id,
                    r.user_id,
                    _clean_opt(r.display_name),
                    title,
                    fold,
                    r.created_at,
                    r.updated_at,
                    r.ended_at,
                )
            )
        if rows:
            await self.write_sync(_tx_import_sessions, rows)

    async def import_messages(self, messages: Sequence[StoredMessage]) -> list[int]:
        """Store many messages of any sessions in one transaction, keeping their times.

        Each message names its ``session_id``; ``created_at`` is kept (now when None). Token
        counts are added to their sessions' totals, and a session's ``updated_at`` moves up to
        its newest message, as :meth:`append_messages` would have done at the time. Sets
        ``id`` (and ``created_at``) on the given objects; ids follow the list's order.

        Raises:
            ValueError: A message has an unknown role or no ``session_id``.
            SessionNotFoundError: A session does not exist (nothing is written).
        """
        if not messages:
            return []
        now = time.time()
        rows: list[tuple[Any, ...]] = []
        per_session: dict[str, list[Any]] = {}
        problems: list[str] = []
        for i, m in enumerate(messages):
            before = len(problems)
            if m.role not in MESSAGE_ROLES:
                problems.append(f"message {i}: unknown role {m.role!r}")
            if not m.session_id:
                problems.append(f"message {i}: no session_id")
            if len(problems) > before or m.session_id is None:
                continue
            created = now if m.created_at is None else m.created_at
            bump = per_session.setdefault(m.session_id, [created, 0, 0])
            bump[0] = max(bump[0], created)
            bump[1] += m.prompt_tokens
            bump[2] += m.completion_tokens
            rows.append(_message_row(m.session_id, m, created))
        if problems:
            raise ValueError("; ".join(problems[:20]))
        bumps = [(b[0], b[1], b[2], sid) for sid, b in per_session.items()]
        ids = await self.write_sync(_tx_import_messages, rows, bumps)
        for m, mid, row in zip(messages, ids, rows, strict=True):
            m.id = mid
            m.created_at = row[-1]
        return ids

    # ---- messages ---------------------------------------------------------------------------

    async def append_messages(
        self,
        session_id: str,
        messages: list[StoredMessage],
        *,
        also: Callable[[sqlite3.Connection], object] | None = None,
    ) -> list[int]:
        """Store messages in one transaction; when this returns they survive a crash.

        Sets ``id``, ``session_id`` and ``created_at`` on the given objects and adds their
        token counts to the session's totals. ``also(conn)`` runs in the same transaction
        (e.g. marking the inbox rows these messages answer), so both happen or neither.

        Raises:
            ValueError: A message has an unknown role.
            SessionNotFoundError: No such session (nothing is written).
        """
        if not messages:
            return []
        now = time.time()
        rows, prompt_tokens, completion_tokens = _message_rows(session_id, messages, now)
        ids = await self.write_sync(
            _tx_append, session_id, rows, now, prompt_tokens, completion_tokens, also
        )
        for m, mid in zip(messages, ids, strict=True):
            m.id = mid
            m.session_id = session_id
            m.created_at = now
        return ids

    async def get_messages(
        self, session_id: str, *, limit: int | None = None
    ) -> list[StoredMessage]:
        """The session's messages in order; with ``limit``, only the last ``limit`` of them.

        A limit can cut between an assistant's tool call and its tool results; callers that
        send the result to a model must trim to a clean turn boundary themselves.
        """
        return await self._db.run(_get_messages, session_id, limit)

    async def pop_last_turn(self, session_id: str) -> list[StoredMessage]:
        """Delete the last user message and everything after it (``/undo``, ``/retry``).

        Returns the deleted messages in order, or ``[]`` if the session has no user message.
        Token totals keep the usage (it was spent).
        """
        return await self.write_sync(_tx_pop_last_turn, session_id)

    async def add_note(
        self, session_id: str, kind: NoteKind, text: str, meta: dict[str, Any] | None = None
    ) -> int:
        """Keep something the screen showed besides messages (see :mod:`.notes`); its id."""
        return await self.write_sync(tx_add_note, session_id, kind, text, meta or {})

    async def get_notes(self, session_id: str) -> list[TranscriptNote]:
        """The session's notes, in the order they were written."""
        return await self._db.run(get_notes, session_id)

    async def search(
        self,
        query: str,
        *,
        limit: int = 20,
        session_id: str | None = None,
        session_key: str | None = None,
    ) -> list[SearchHit]:
        """Full-text search over message text; best match first, newest first on ties.

        The ranking covers the newest :data:`RANK_WINDOW` hits (within the scope): every hit
        of a rarer query, the recent ones of a word found everywhere (scoring all of those
        would take a second on a big home).

        Any string is accepted: it is searched as plain words (see :mod:`.fts`), never parsed
        as FTS5 syntax. A query with no searchable word returns ``[]``.

        ``session_id`` / ``session_key`` restrict the hits in SQL, before ``limit`` applies,
        so a chat searching its own sessions (all sessions of its key) is never crowded out
        by more recent or better matches in other chats.
        """
        match = build_match_query(query)
        if match is None or limit <= 0:
            return []
        return await self._db.run(_search, match, limit, session_id, session_key)

    # ---- input history and kv ---------------------------------------------------------------

    async def add_input_history(self, text: str, *, scope: str = "local") -> None:
        """Remember a line the user entered; skip it if it repeats the previous one.

        Only the newest ``history_cap`` entries per scope are kept.
        """
        await self.write_sync(_tx_add_history, scope, _clean(text), self.history_cap)

    async def get_input_history(self, *, scope: str = "local", limit: int = 500) -> list[str]:
        """The newest ``limit`` entries of the scope, oldest first (ready for up-arrow)."""
        rows = await self._db.run(_fetch_all, _SQL_HISTORY_GET, (scope, limit))
        return [r[0] for r in rows]

    async def kv_get(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        row = await self._db.run(_fetch_one, _SQL_KV_GET, (key,))
        return None if row is None else row[0]

    async def kv_set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (replacing any previous value)."""
        await self.write_sync(_tx_execute, _SQL_KV_SET, (key, _clean(value)))

    async def kv_delete(self, key: str) -> None:
        """Forget ``key`` (no-op if absent)."""
        await self.write_sync(_tx_execute, _SQL_KV_DELETE, (key,))

    async def kv_items(self, prefix: str) -> list[tuple[str, str]]:
        """Every ``(key, value)`` whose key starts with ``prefix``, by key.

        Why: a feature keeps one entry per item in flight (a background run) and must find
        them all again at start, without a table of its own.
        """
        rows = await self._db.run(_fetch_all, _SQL_KV_PREFIX, (len(prefix), prefix))
        return [(r[0], r[1]) for r in rows]


def _message_rows(
    session_id: str | None, messages: Sequence[StoredMessage], created: float
) -> tuple[list[tuple[Any, ...]], int, int]:
    """The rows of ``messages`` and their token sums; ValueError for an unknown role."""
    rows: list[tuple[Any, ...]] = []
    prompt_tokens = completion_tokens = 0
    for m in messages:
        if m.role not in MESSAGE_ROLES:
            raise ValueError(f"unknown message role {m.role!r}")
        prompt_tokens += m.prompt_tokens
        completion_tokens += m.completion_tokens
        rows.append(_message_row(session_id, m, created))
    return rows, prompt_tokens, completion_tokens


def _message_row(session_id: str | None, m: StoredMessage, created: float) -> tuple[Any, ...]:
    """A message as the values of ``_SQL_INSERT_MESSAGE`` (appending and importing alike)."""
    return (
        session_id,
        m.role,
        _clean_opt(m.content),
        _dumps(m.tool_calls) if m.tool_calls else None,
        m.tool_call_id,
        m.name,
        m.prompt_tokens,
        m.completion_tokens,
        1 if m.interrupted else 0,
        _dumps(m.meta) if m.meta else None,
        created,
    )


def _dumps(value: Any) -> str:
    return _clean(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _fetch_one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Any:
    return conn.execute(sql, params).fetchone()


def _fetch_all(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def _tx_execute(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    conn.execute(sql, params)
