"""Refuse a read-only database when it is opened, not at the first write.

SQLite opens a file it may not write read-only without a word, and reading works; the first
message to store would then fail after the platform had been told it was received. So every
open proves it can write: take the write lock and rewrite the schema version to its own value
(a write SQLite really attempts), then roll back, so nothing in the file changes.
"""

from __future__ import annotations

import sqlite3

from .migrations import get_user_version


class DatabaseReadOnlyError(RuntimeError):
    """The database file (or its folder, for the WAL files) cannot be written."""


def require_writable(conn: sqlite3.Connection, path: str) -> None:
    """Raise DatabaseReadOnlyError unless ``conn`` (autocommit mode) can write its database."""
    version = get_user_version(conn)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA user_version = {int(version)}")
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        # SQLITE_READONLY and its extended codes (SQLITE_READONLY_DIRECTORY, ...).
        if not exc.sqlite_errorname.startswith("SQLITE_READONLY"):
            raise
        raise DatabaseReadOnlyError(
            f"the database {path} is read-only ({exc}); Hermes must write it to store messages"
        ) from None
