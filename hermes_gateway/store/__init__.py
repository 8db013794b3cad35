"""SQLite persistence of the gateway: sessions, messages (with FTS5 search), input history, kv.

Usage::

    store = await SessionStore.open(default_db_path(hermes_home))
    session = await store.get_active_session(key) or await store.create_session(key, ...)
    await store.append_messages(session.id, [StoredMessage("user", "hi")])

Feature modules that need their own tables append a migration in :mod:`.migrations` and use
:meth:`SessionStore.transaction` / :meth:`SessionStore.write_sync` for their writes.
"""

from __future__ import annotations

from .fts import build_match_query
from .migrations import (
    MIGRATIONS,
    Migration,
    MigrationStep,
    SchemaVersionError,
    apply_migrations,
    latest_version,
)
from .notes import NoteKind, TranscriptNote, merge_transcript
from .records import MESSAGE_ROLES, SearchHit, SessionRecord, StoredMessage
from .session_store import (
    BUSY_TIMEOUT_S,
    DEFAULT_DB_NAME,
    SessionNotFoundError,
    SessionStore,
    check_database,
    default_db_path,
)
from .writable import DatabaseReadOnlyError

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEFAULT_DB_NAME",
    "DatabaseReadOnlyError",
    "MESSAGE_ROLES",
    "MIGRATIONS",
    "Migration",
    "MigrationStep",
    "NoteKind",
    "TranscriptNote",
    "merge_transcript",
    "SchemaVersionError",
    "SearchHit",
    "SessionNotFoundError",
    "SessionRecord",
    "SessionStore",
    "StoredMessage",
    "check_database",
    "apply_migrations",
    "build_match_query",
    "default_db_path",
    "latest_version",
]
