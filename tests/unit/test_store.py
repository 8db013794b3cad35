"""Tests for hermes_gateway.store: sessions, messages, search, history, kv, concurrency.

Every test runs against a real SQLite file in a temporary folder, through the store's own
SQLite thread.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hermes_gateway.store import (
    DEFAULT_DB_NAME,
    SearchHit,
    SessionNotFoundError,
    SessionRecord,
    SessionStore,
    StoredMessage,
    build_match_query,
    default_db_path,
    latest_version,
)
from hermes_gateway.store.executor import SqliteWorker

KEY_A = "telegram:dm:1001"
KEY_B = "discord:group:42:7"


async def _session(store: SessionStore, key: str = KEY_A, **kw: object) -> SessionRecord:
    platform, chat_type, chat_id = key.split(":")[:3]
    return await store.create_session(
        key,
        platform=platform,
        chat_type=chat_type,
        chat_id=chat_id,
        **kw,  # type: ignore[arg-type]
    )


# ---- opening ---------------------------------------------------------------------------------


async def test_open_creates_parent_and_sets_pragmas(tmp_path: Path) -> None:
    path = default_db_path(tmp_path / "deep" / "home")
    assert path.name == DEFAULT_DB_NAME == "hermes_tui.db"
    store = await SessionStore.open(path)
    try:
        assert path.exists()
        assert store.schema_version == latest_version() >= 3
        db = store.connection
        assert isinstance(db, SqliteWorker)

        async def pragma(name: str) -> object:
            rows = list(await db.execute_fetchall(f"PRAGMA {name}"))
            return rows[0][0]

        assert await pragma("journal_mode") == "wal"
        assert await pragma("synchronous") == 1  # NORMAL
        assert await pragma("foreign_keys") == 1
        assert await pragma("busy_timeout") == 5000
        assert await pragma("user_version") == latest_version()
    finally:
        await store.close()
        await store.close()  # idempotent


async def test_store_calls_run_on_one_dedicated_thread(store: SessionStore) -> None:
    # Every call is one hop to the thread that owns the connection, never the loop's thread
    # (replaces the old check that aiosqlite's private _execute/_conn still existed).
    def thread_id(conn: sqlite3.Connection) -> int:
        return threading.get_ident()

    read_thread = await store.read_sync(thread_id)
    write_thread = await store.write_sync(thread_id)
    assert read_thread == write_thread != threading.get_ident()


async def test_in_memory_store_works() -> None:
    async with await SessionStore.open(":memory:") as store:
        s = await _session(store)
        await store.append_messages(s.id, [StoredMessage("user", "in memory hello")])
        assert [h.message_id for h in await store.search("hello")] == [1]


# ---- sessions --------------------------------------------------------------------------------


async def test_create_get_and_list_sessions_newest_first(store: SessionStore) -> None:
    a = await _session(store, KEY_A, user_id="u1", display_name="Ann", title="First")
    assert a.id.count("-") == 2 and len(a.id) == len("20261121-142233-ab12cd")
    b = await _session(store, KEY_B, thread_id="7")
    got = await store.get_session(a.id)
    assert got is not None
    assert (got.session_key, got.platform, got.chat_type, got.chat_id) == (
        KEY_A,
        "telegram",
        "dm",
        "1001",
    )
    assert (got.user_id, got.display_name, got.title, got.thread_id) == ("u1", "Ann", "First", None)
    assert got.ended_at is None
    assert await store.get_session("nope") is None

    # Writing to `a` makes it the most recently updated.
    await store.append_messages(a.id, [StoredMessage("user", "hi")])
    assert [s.id for s in await store.list_sessions()] == [a.id, b.id]
    assert [s.id for s in await store.list_sessions(limit=1)] == [a.id]
    assert [s.id for s in await store.list_sessions(platform="discord")] == [b.id]
    assert await store.list_sessions(platform="api_server") == []


async def test_message_count_and_preview(store: SessionStore) -> None:
    s = await _session(store)
    long_text = "word  \n " * 40
    await store.append_messages(
        s.id,
        [
            StoredMessage("system", "you are hermes"),
            StoredMessage("user", long_text),
            StoredMessage("assistant", None, tool_calls=[_call("c1")]),
            StoredMessage("tool", "tool output is not a preview", tool_call_id="c1"),
        ],
    )
    (listed,) = await store.list_sessions()
    assert listed.message_count == 4
    assert len(listed.last_preview) <= 80
    assert listed.last_preview.startswith("word word word")
    assert listed.last_preview.endswith("\u2026")
    await store.append_messages(s.id, [StoredMessage("assistant", "  short\nanswer ")])
    got = await store.get_session(s.id)
    assert got is not None and got.message_count == 5 and got.last_preview == "short answer"
    active = await store.get_active_session(KEY_A)
    assert active is not None and active.message_count == 5


async def test_create_session_ends_previous_active_of_same_key(store: SessionStore) -> None:
    a = await _session(store, KEY_A)
    other = await _session(store, KEY_B)
    b = await _session(store, KEY_A)
    active = await store.get_active_session(KEY_A)
    assert active is not None and active.id == b.id
    old = await store.get_session(a.id)
    assert old is not None and old.ended_at is not None
    # Another key is untouched.
    assert (await store.get_active_session(KEY_B)).id == other.id  # type: ignore[union-attr]
    assert [s.id for s in await store.list_sessions(include_ended=False)] == [b.id, other.id]
    assert await store.get_active_session("local:dm:nobody") is None


async def test_end_and_activate_session(store: SessionStore) -> None:
    a = await _session(store, KEY_A)
    b = await _session(store, KEY_A)
    await store.end_session(b.id)
    await store.end_session(b.id)  # already ended: no-op
    assert await store.get_active_session(KEY_A) is None

    c = await _session(store, KEY_A)
    resumed = await store.activate_session(a.id)
    assert resumed.id == a.id and resumed.ended_at is None
    assert resumed.updated_at >= c.updated_at
    assert (await store.get_active_session(KEY_A)).id == a.id  # type: ignore[union-attr]
    c_now = await store.get_session(c.id)
    assert c_now is not None and c_now.ended_at is not None
    assert (await store.list_sessions())[0].id == a.id
    # Activating the active one again is harmless.
    assert (await store.activate_session(a.id)).id == a.id

    with pytest.raises(SessionNotFoundError):
        await store.activate_session("missing")
    with pytest.raises(SessionNotFoundError):
        await store.end_session("missing")


async def test_only_one_active_session_per_key_even_from_raw_sql(store: SessionStore) -> None:
    await _session(store, KEY_A)
    with pytest.raises(sqlite3.IntegrityError):
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO sessions (id, session_key, platform, chat_type, chat_id, "
                "created_at, updated_at) VALUES ('x', ?, 'telegram', 'dm', '1001', 0, 0)",
                (KEY_A,),
            )


async def test_titles_unique_case_insensitively(store: SessionStore) -> None:
    a = await _session(store, KEY_A, title="Trip to Straße")
    b = await _session(store, KEY_B)
    with pytest.raises(ValueError, match=f"title already used by session {a.id}"):
        await store.set_title(b.id, "TRIP TO STRASSE")
    with pytest.raises(ValueError, match=a.id):
        await _session(store, "local:dm:me", title="trip to straße")
    # The failed create rolled back whole: it did not end anything nor add a session.
    assert len(await store.list_sessions()) == 2

    await store.set_title(a.id, "trip to straße")  # its own title, other case: fine
    assert (await store.get_session(a.id)).title == "trip to straße"  # type: ignore[union-attr]
    await store.set_title(a.id, "  ")  # blank clears
    assert (await store.get_session(a.id)).title is None  # type: ignore[union-attr]
    await store.set_title(b.id, "Trip to Straße")  # free again
    with pytest.raises(SessionNotFoundError):
        await store.set_title("missing", "x")


async def test_find_session_by_id_title_and_unique_prefix(store: SessionStore) -> None:
    a = await _session(store, KEY_A, title="Deploy notes")
    b = await _session(store, KEY_B, title="Deployment plan")
    c = await _session(store, "local:dm:me", title="Groceries")
    assert (await store.find_session(a.id)).id == a.id  # type: ignore[union-attr]
    assert (await store.find_session("deploy NOTES")).id == a.id  # type: ignore[union-attr]
    assert (await store.find_session("deployment plan")).id == b.id  # type: ignore[union-attr]
    assert (await store.find_session("gro")).id == c.id  # type: ignore[union-attr]
    assert (await store.find_session("deploym")).id == b.id  # type: ignore[union-attr]
    assert await store.find_session("deplo") is None  # ambiguous prefix
    assert await store.find_session("nothing like it") is None
    assert await store.find_session("") is None
    assert await store.find_session("%") is None


# ---- messages --------------------------------------------------------------------------------


def _call(call_id: str) -> dict[str, object]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "terminal", "arguments": '{"command": "ls"}'},
    }


async def test_append_and_get_messages_round_trip(store: SessionStore) -> None:
    s = await _session(store)
    msgs = [
        StoredMessage("user", "list files", meta={"from_operator": True, "images": ["a.png"]}),
        StoredMessage("assistant", None, tool_calls=[_call("c1")], prompt_tokens=10),
        StoredMessage("tool", "a.txt\nb.txt", tool_call_id="c1", name="terminal"),
        StoredMessage("assistant", "two files", completion_tokens=4, interrupted=True),
    ]
    before = time.time()
    ids = await store.append_messages(s.id, msgs)
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [m.id for m in msgs] == ids
    assert all(m.session_id == s.id and m.created_at >= before for m in msgs)  # type: ignore[operator]

    got = await store.get_messages(s.id)
    assert got == msgs
    assert got[0].meta == {"from_operator": True, "images": ["a.png"]}
    assert got[3].interrupted is True and got[1].interrupted is False
    assert [m.to_openai() for m in got] == [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
        {"role": "tool", "content": "a.txt\nb.txt", "tool_call_id": "c1", "name": "terminal"},
        {"role": "assistant", "content": "two files"},
    ]
    assert got[1].tool_calls == [_call("c1")]
    assert StoredMessage("user").to_openai() == {"role": "user", "content": ""}

    more = [StoredMessage("user", f"m{i}") for i in range(5)]
    await store.append_messages(s.id, more)
    last3 = await store.get_messages(s.id, limit=3)
    assert [m.content for m in last3] == ["m2", "m3", "m4"]
    assert await store.get_messages(s.id, limit=0) == []
    assert await store.get_messages("missing") == []
    assert await store.append_messages(s.id, []) == []


async def test_append_rejects_bad_role_and_unknown_session(store: SessionStore) -> None:
    s = await _session(store)
    with pytest.raises(ValueError, match="role"):
        await store.append_messages(s.id, [StoredMessage("user", "ok"), StoredMessage("bot", "x")])
    with pytest.raises(SessionNotFoundError):
        await store.append_messages("missing", [StoredMessage("user", "lost")])
    assert await store.get_messages(s.id) == []
    assert await store.search("lost") == []


async def test_lone_surrogates_are_stored_not_fatal(store: SessionStore) -> None:
    s = await _session(store)
    await store.append_messages(
        s.id, [StoredMessage("user", "bad \ud800 text", meta={"k": "\udfff"})]
    )
    (m,) = await store.get_messages(s.id)
    assert m.content == "bad \ufffd text" and m.meta == {"k": "\ufffd"}


async def test_pop_last_turn(store: SessionStore) -> None:
    s = await _session(store)
    first = [
        StoredMessage("user", "first question"),
        StoredMessage("assistant", None, tool_calls=[_call("c1")]),
        StoredMessage("tool", "result", tool_call_id="c1"),
        StoredMessage("assistant", "first answer"),
    ]
    second = [StoredMessage("user", "second zebra question"), StoredMessage("assistant", "zebra!")]
    await store.append_messages(s.id, first)
    await store.append_messages(s.id, second)
    assert len(await store.search("zebra")) == 2

    popped = await store.pop_last_turn(s.id)
    assert [m.content for m in popped] == ["second zebra question", "zebra!"]
    assert [m.id for m in popped] == [m.id for m in second]
    assert await store.get_messages(s.id) == first
    assert await store.search("zebra") == []  # the FTS index followed the delete

    assert [m.content for m in await store.pop_last_turn(s.id)] == [
        "first question",
        None,
        "result",
        "first answer",
    ]
    assert await store.pop_last_turn(s.id) == []
    # Ids are never reused after an undo.
    (new_id,) = await store.append_messages(s.id, [StoredMessage("user", "again")])
    assert new_id > max(m.id for m in second)  # type: ignore[type-var]

    other = await _session(store, KEY_B)
    await store.append_messages(other.id, [StoredMessage("assistant", "no user message")])
    assert await store.pop_last_turn(other.id) == []
    assert len(await store.get_messages(other.id)) == 1


async def test_token_totals(store: SessionStore) -> None:
    s = await _session(store)
    assert await store.usage_totals(s.id) == (0, 0)
    await store.append_messages(
        s.id,
        [
            StoredMessage("user", "q"),
            StoredMessage("assistant", "a", prompt_tokens=100, completion_tokens=20),
        ],
    )
    await store.append_messages(
        s.id, [StoredMessage("assistant", "b", prompt_tokens=150, completion_tokens=5)]
    )
    assert await store.usage_totals(s.id) == (250, 25)
    got = await store.get_session(s.id)
    assert got is not None and (got.prompt_tokens, got.completion_tokens) == (250, 25)
    await store.pop_last_turn(s.id)  # usage was spent: not refunded
    assert await store.usage_totals(s.id) == (250, 25)
    with pytest.raises(SessionNotFoundError):
        await store.usage_totals("missing")


# ---- input history and kv --------------------------------------------------------------------


async def test_input_history_dedupe_scopes_and_limit(store: SessionStore) -> None:
    for text in ["ls", "ls", "/help", "ls", "ls"]:
        await store.add_input_history(text)
    await store.add_input_history("other", scope="api")
    assert await store.get_input_history() == ["ls", "/help", "ls"]
    assert await store.get_input_history(scope="api") == ["other"]
    assert await store.get_input_history(limit=2) == ["/help", "ls"]
    assert await store.get_input_history(scope="none") == []


async def test_input_history_capped_at_1000_per_scope(store: SessionStore) -> None:
    await store.add_input_history("keep me", scope="other")
    for i in range(1005):
        await store.add_input_history(f"line {i}")
    kept = await store.get_input_history(limit=5000)
    assert len(kept) == 1000
    assert kept[0] == "line 5" and kept[-1] == "line 1004"
    assert await store.get_input_history(scope="other") == ["keep me"]
    rows = list(
        await store.connection.execute_fetchall(
            "SELECT COUNT(*) FROM input_history WHERE scope = 'local'"
        )
    )
    assert rows[0][0] == 1000


async def test_kv(store: SessionStore) -> None:
    assert await store.kv_get("telegram.offset") is None
    await store.kv_set("telegram.offset", "41")
    await store.kv_set("telegram.offset", "42")
    await store.kv_set("émoji 🎉", "ünïcode ✓")
    assert await store.kv_get("telegram.offset") == "42"
    assert await store.kv_get("émoji 🎉") == "ünïcode ✓"
    await store.kv_delete("telegram.offset")
    assert await store.kv_get("telegram.offset") is None


async def test_kv_items_by_prefix(store: SessionStore) -> None:
    for key in ("run:b", "run:a", "run_x", "runner:c", "ru", "%run:", "run:%"):
        await store.kv_set(key, key.upper())
    assert await store.kv_items("run:") == [
        ("run:%", "RUN:%"),
        ("run:a", "RUN:A"),
        ("run:b", "RUN:B"),
    ]
    assert await store.kv_items("nothing:") == []


# ---- full-text search ------------------------------------------------------------------------

HOSTILE_QUERIES = [
    '"',
    '""',
    '"""',
    "'",
    "''",
    "*",
    "**",
    "deploy*",
    "*deploy",
    "AND",
    "OR",
    "NOT",
    "AND OR NOT",
    "deploy AND",
    "OR deploy",
    "NOT deploy",
    "NEAR(",
    "NEAR(deploy server, 5)",
    "NEAR/3",
    "(",
    ")",
    "(deploy",
    "deploy)",
    "((()))",
    "col:",
    "content:deploy",
    "messages_fts:deploy",
    "{content}: deploy",
    "- deploy",
    "-deploy",
    "^",
    "^deploy",
    "+",
    ":",
    ";DROP TABLE messages;--",
    "\\",
    "\x00",
    "dep\x00loy",
    "\ud800",
    "🎉",
    "🎉🎉 deploy 🎉",
    "日本語",
    "café",
    "ÜBER",
    "\u200b",
    "\t\n\r ",
    "%_",
    '"deploy',
    'deploy"',
    'de"ploy',
    "deploy" * 5000,
    " ".join(["word"] * 500),
    "a" * 100_000,
]


async def test_search_survives_hostile_queries(store: SessionStore) -> None:
    assert len(HOSTILE_QUERIES) >= 25
    s = await _session(store)
    await store.append_messages(
        s.id,
        [
            StoredMessage("user", "please deploy the server and NOT break it"),
            StoredMessage("assistant", "Café über 日本語 deploy done (or not)"),
        ],
    )
    for query in HOSTILE_QUERIES:
        hits = await store.search(query)
        assert isinstance(hits, list), query
    assert await store.search("") == []
    assert await store.search("   ") == []
    assert await store.search("🎉") == []


async def test_search_never_raises_on_random_strings(store: SessionStore) -> None:
    s = await _session(store)
    await store.append_messages(s.id, [StoredMessage("user", "alpha beta gamma")])
    alphabet = list("\"'*^-+:()[]{},.;/\\ \t\nANDORNOTNEARab0é日🎉\x00") + ["\ud83d", "NEAR("]
    rng = random.Random(1234)
    for _ in range(300):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        await store.search(query)


async def test_search_finds_real_words_with_snippets(store: SessionStore) -> None:
    a = await _session(store, KEY_A, title="Ops")
    b = await _session(store, KEY_B)
    await store.append_messages(
        a.id,
        [
            StoredMessage("user", "please deploy the server tonight"),
            StoredMessage("assistant", "I will deploy it. Café ready."),
        ],
    )
    await store.append_messages(b.id, [StoredMessage("user", "unrelated words and deployments")])

    hits = await store.search("deploy")
    assert {h.session_id for h in hits} == {a.id}
    assert all(isinstance(h, SearchHit) and "[deploy]" in h.snippet for h in hits)
    assert {h.role for h in hits} == {"user", "assistant"}
    assert hits[0].session_key == KEY_A and hits[0].session_title == "Ops"

    assert len(await store.search("deplo*")) == 3  # prefix also finds "deployments"
    assert [h.session_id for h in await store.search("deployments")] == [b.id]
    assert len(await store.search("cafe")) == 1  # diacritics removed
    assert len(await store.search("CAFÉ")) == 1
    assert len(await store.search("deploy server")) == 1  # all words
    assert len(await store.search('"deploy"')) == 2  # quotes are just characters
    assert len(await store.search("deploy AND")) == 0  # "and" is a word here, not an operator
    assert len(await store.search("words AND")) == 1
    assert [h.session_id for h in await store.search("deplo*", session_id=b.id)] == [b.id]
    assert len(await store.search("deploy", limit=1)) == 1
    assert await store.search("deploy", limit=0) == []


async def test_search_ranks_then_newest_first_on_ties(store: SessionStore) -> None:
    s = await _session(store)
    (old,) = await store.append_messages(s.id, [StoredMessage("user", "kiwi apple")])
    (new,) = await store.append_messages(s.id, [StoredMessage("user", "kiwi apple")])
    (best,) = await store.append_messages(s.id, [StoredMessage("user", "kiwi kiwi kiwi")])
    assert [h.message_id for h in await store.search("kiwi")] == [best, new, old]


async def test_search_by_session_key_is_not_crowded_out_by_other_chats(
    store: SessionStore,
) -> None:
    # The chat's own hits: one in an ended session of its key, one in its active session.
    first = await _session(store, KEY_A)
    (old_hit,) = await store.append_messages(first.id, [StoredMessage("user", "the walrus")])
    second = await _session(store, KEY_A)  # ends ``first``: same key, new session
    (own_hit,) = await store.append_messages(second.id, [StoredMessage("user", "a walrus")])
    # 100 other chats with more recent and better matches.
    for i in range(100):
        other = await _session(store, f"telegram:dm:{2000 + i}")
        await store.append_messages(other.id, [StoredMessage("user", "walrus walrus walrus")])

    # Fetching a multiple of the limit and filtering afterwards misses the chat's own hits...
    crowded = await store.search("walrus", limit=25)
    assert all(h.session_key != KEY_A for h in crowded)
    # ...filtering in SQL finds them, across all sessions of the key and only those.
    hits = await store.search("walrus", limit=5, session_key=KEY_A)
    assert {h.message_id for h in hits} == {old_hit, own_hit}
    assert {h.session_key for h in hits} == {KEY_A}
    assert [
        h.message_id for h in await store.search("walrus", session_key=KEY_A, session_id=first.id)
    ] == [old_hit]
    assert await store.search("walrus", session_key="discord:dm:nobody") == []


def test_build_match_query_quotes_every_word() -> None:
    assert build_match_query("") is None
    assert build_match_query("  * ^ ( ) 🎉 ") is None
    assert build_match_query('say "hi" OR NEAR(x') == '"say" """hi""" "OR" "NEAR(x"'
    assert build_match_query("deplo*") == '"deplo"*'
    assert build_match_query("a\x00b") == '"a" "b"'
    assert build_match_query(" ".join(f"w{i}" for i in range(100))).count('"') == 64  # type: ignore[union-attr]


# ---- concurrency and transactions ------------------------------------------------------------


async def test_two_stores_on_one_file_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    s1, s2 = await asyncio.gather(SessionStore.open(path), SessionStore.open(path))
    try:
        a = await _session(s1, KEY_A)
        b = await _session(s2, KEY_B)
        n = 150

        async def writer(store: SessionStore, session_id: str, tag: str) -> list[int]:
            ids: list[int] = []
            for i in range(n):
                ids += await store.append_messages(
                    session_id, [StoredMessage("user", f"{tag} {i}", prompt_tokens=1)]
                )
                if i % 10 == 0:
                    await store.kv_set(f"{tag}.offset", str(i))
                    await store.add_input_history(f"{tag} {i}")
            return ids

        ids1, ids2 = await asyncio.gather(writer(s1, a.id, "one"), writer(s2, b.id, "two"))
        assert len(set(ids1) | set(ids2)) == 2 * n
        # Each store sees the other's writes.
        assert len(await s1.get_messages(b.id)) == n
        assert len(await s2.get_messages(a.id)) == n
        assert await s1.usage_totals(b.id) == (n, 0)
        assert await s2.kv_get("one.offset") == str(n - 10)
        assert len(await s1.get_input_history(limit=1000)) == 2 * (n // 10)
        # And a third, plain connection (like the pairing CLI) reads it all consistently.
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2 * n
    finally:
        await s1.close()
        await s2.close()


async def test_write_waits_for_another_process_lock(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = await SessionStore.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        s = await _session(store)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 0.3 s
        other.execute("INSERT INTO kv (key, value) VALUES ('cli', 'yes')")
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        t0 = time.monotonic()
        await store.append_messages(s.id, [StoredMessage("user", "waited")])
        assert time.monotonic() - t0 >= 0.25
        # Reads never wait in WAL mode.
        other.execute("BEGIN IMMEDIATE")
        assert len(await store.get_messages(s.id)) == 1
        other.execute("ROLLBACK")
        assert await store.kv_get("cli") == "yes"
    finally:
        other.close()
        await store.close()


async def test_transaction_commits_rolls_back_and_serializes(store: SessionStore) -> None:
    await store.connection.execute("CREATE TABLE IF NOT EXISTS feature (x INTEGER)")
    s = await _session(store)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def feature_tx() -> None:
        async with store.transaction() as db:
            await db.execute("INSERT INTO feature VALUES (1)")
            entered.set()
            await release.wait()
            await db.execute("INSERT INTO feature VALUES (2)")

    task = asyncio.create_task(feature_tx())
    await entered.wait()
    append = asyncio.create_task(store.append_messages(s.id, [StoredMessage("user", "after")]))
    await asyncio.sleep(0.05)
    assert not append.done()  # the store's write waits for the open transaction
    release.set()
    await task
    await append
    rows = list(await store.connection.execute_fetchall("SELECT x FROM feature ORDER BY x"))
    assert [r[0] for r in rows] == [1, 2]

    with pytest.raises(RuntimeError):
        async with store.transaction() as db:
            await db.execute("INSERT INTO feature VALUES (3)")
            raise RuntimeError("boom")
    rows = list(await store.connection.execute_fetchall("SELECT COUNT(*) FROM feature"))
    assert rows[0][0] == 2
    assert not store.connection.in_transaction
    assert len(await store.get_messages(s.id)) == 1


async def test_write_sync_runs_function_in_one_transaction(store: SessionStore) -> None:
    def insert_two_then_fail(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("INSERT INTO kv (key, value) VALUES (?, 'a')", (key,))
        raise ValueError("half done")

    with pytest.raises(ValueError):
        await store.write_sync(insert_two_then_fail, "half")
    assert await store.kv_get("half") is None

    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])

    assert await store.read_sync(count) == 0


async def test_cancelled_transaction_leaves_connection_usable(tmp_path: Path) -> None:
    path = tmp_path / "cancel.db"
    store = await SessionStore.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        s = await _session(store)
        other.execute("BEGIN IMMEDIATE")  # so the store's BEGIN has to wait

        async def feature() -> None:
            async with store.transaction() as db:
                await db.execute("INSERT INTO kv (key, value) VALUES ('never', 'x')")

        task = asyncio.create_task(feature())
        await asyncio.sleep(0.1)
        task.cancel()  # cancelled while BEGIN IMMEDIATE waits on the worker thread
        # The other writer finishes soon after, so that BEGIN then succeeds: a transaction
        # nobody will commit, unless the store rolls it back.
        asyncio.get_running_loop().call_later(0.05, other.execute, "COMMIT")
        t0 = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 2.0
        # The BEGIN that finished after the cancel must not be left open on the connection.
        await store.append_messages(s.id, [StoredMessage("user", "still works")])
        assert not store.connection.in_transaction
        assert await store.kv_get("never") is None
        assert len(await store.get_messages(s.id)) == 1
    finally:
        other.close()
        await store.close()
