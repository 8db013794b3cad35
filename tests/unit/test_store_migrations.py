"""Tests for hermes_gateway.store.migrations: upgrading real old databases, refusing new ones."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hermes_gateway.store import (
    MIGRATIONS,
    SchemaVersionError,
    SessionStore,
    StoredMessage,
    apply_migrations,
    latest_version,
)
from hermes_gateway.store.migrations import get_user_version, split_script, validate_migrations


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
    return {r[0] for r in rows}


def _build_old_db(path: Path, version: int) -> None:
    """A database as an older Hermes left it: schema up to ``version`` plus some data."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert apply_migrations(conn, target=version) == version
        conn.execute(
            "INSERT INTO sessions (id, session_key, platform, chat_type, chat_id, title, "
            "title_fold, created_at, updated_at) VALUES "
            "('20250101-000000-aaaaaa', 'telegram:dm:5', 'telegram', 'dm', '5', 'Old chat', "
            "'old chat', 1.0, 2.0)"
        )
        rows = [
            ("user", "where is the lighthouse manual", 1.0),
            ("assistant", "The lighthouse manual is in the shed", 1.5),
            ("assistant", None, 1.6),  # a tool-call message: no text to index
            ("user", "thanks, zeppelin", 2.0),
        ]
        conn.executemany(
            "INSERT INTO messages (session_id, role, content, created_at) "
            "VALUES ('20250101-000000-aaaaaa', ?, ?, ?)",
            rows,
        )
    finally:
        conn.close()


def test_migration_list_is_consecutive_and_valid() -> None:
    validate_migrations(MIGRATIONS)
    assert [v for v, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert latest_version() == len(MIGRATIONS) >= 3


@pytest.mark.parametrize(
    "bad",
    [
        [(2, "SELECT 1;")],
        [(1, "SELECT 1;"), (1, "SELECT 1;")],
        [(1, "SELECT 1;"), (3, "SELECT 1;")],
        [(1, 42)],
    ],
)
def test_validate_rejects_gaps_duplicates_and_bad_steps(bad: list) -> None:
    with pytest.raises(ValueError):
        validate_migrations(bad)


def test_split_script_keeps_triggers_strings_and_comments_whole() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        INSERT INTO t VALUES ('x;');
        SELECT 1;
    END;
    /* block; comment */
    """
    parts = split_script(script)
    assert len(parts) == 2
    assert parts[0].endswith("DEFAULT 'a;b');")
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_script("CREATE TABLE a (x); CREATE TABLE b (y)")
    with pytest.raises(ValueError, match="incomplete"):
        split_script("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;")
    # The real scripts split into statements SQLite accepts one by one.
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert apply_migrations(conn) == latest_version()


@pytest.mark.parametrize("old_version", [1, 2])
async def test_upgrade_old_database_keeps_data_and_indexes_it(
    tmp_path: Path, old_version: int
) -> None:
    path = tmp_path / "old.db"
    _build_old_db(path, old_version)

    store = await SessionStore.open(path)
    try:
        assert store.schema_version == latest_version()
        sid = "20250101-000000-aaaaaa"
        msgs = await store.get_messages(sid)
        assert [m.content for m in msgs][:2] == [
            "where is the lighthouse manual",
            "The lighthouse manual is in the shed",
        ]
        # v2's backfill indexed what v1 had stored.
        hits = await store.search("lighthouse")
        assert {h.message_id for h in hits} == {msgs[0].id, msgs[1].id}
        assert all("[lighthouse]" in h.snippet for h in hits)
        assert [h.message_id for h in await store.search("zeppelin")] == [msgs[3].id]
        # New rows are indexed by the triggers, and v3's tables work.
        await store.append_messages(sid, [StoredMessage("user", "new zeppelin question")])
        assert len(await store.search("zeppelin")) == 2
        await store.add_input_history("hello")
        await store.kv_set("k", "v")
        assert await store.get_input_history() == ["hello"] and await store.kv_get("k") == "v"
        old = await store.find_session("old chat")
        assert old is not None and old.message_count == 5
        await store.connection.execute(
            "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"
        )
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert get_user_version(conn) == latest_version()
        assert {"messages_fts", "messages_fts_ai", "input_history", "kv"} <= _tables(conn)


async def test_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE from_the_future (x)")
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SchemaVersionError, match=rf"99.*newer.*up to {latest_version()}"):
        await SessionStore.open(path)
    with sqlite3.connect(path) as conn:
        assert get_user_version(conn) == 99
        assert _tables(conn) == {"from_the_future"}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_failing_step_rolls_back_only_itself(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE b (y)")
        conn.execute("INSERT INTO a VALUES (1)")
        raise RuntimeError("migration 2 failed half-way")

    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        steps: list = [(1, "CREATE TABLE a (x);"), (2, broken)]
        with pytest.raises(RuntimeError, match="half-way"):
            apply_migrations(conn, steps)
        assert get_user_version(conn) == 1
        assert _tables(conn) == {"a"}
        assert conn.execute("SELECT COUNT(*) FROM a").fetchone()[0] == 0
        assert not conn.in_transaction

        def fixed(c: sqlite3.Connection) -> None:
            c.execute("CREATE TABLE b (y)")

        steps[1] = (2, fixed)
        assert apply_migrations(conn, steps) == 2
        assert apply_migrations(conn, steps) == 2  # nothing left to do
        assert _tables(conn) == {"a", "b"}

        # A bad SQL script is rolled back the same way.
        steps.append((3, "CREATE TABLE c (z); INSERT INTO nowhere VALUES (1);"))
        with pytest.raises(sqlite3.OperationalError):
            apply_migrations(conn, steps)
        assert get_user_version(conn) == 2 and "c" not in _tables(conn)
    finally:
        conn.close()


async def test_processes_opening_a_new_file_together_migrate_once(tmp_path: Path) -> None:
    # The gateway and the CLI may create the file at the same moment. Racing on a new file is
    # timing-dependent, so race on several new files.
    for round_ in range(30):
        path = tmp_path / f"race{round_}.db"
        stores = await asyncio.gather(*(SessionStore.open(path) for _ in range(5)))
        try:
            assert [s.schema_version for s in stores] == [latest_version()] * 5
            s = await stores[0].create_session(
                "local:dm:x", platform="local", chat_type="dm", chat_id="x"
            )
            assert (await stores[4].get_session(s.id)) is not None
        finally:
            for s in stores:
                await s.close()
