"""Bulk import (``import_sessions`` / ``import_messages``) and search on many hits.

Import keeps history as it was (times, ended sessions, titles) and must leave the same records
appending one by one would have: counts, previews, token totals, search. Search ranks only the
newest RANK_WINDOW hits of its scope; a chat's own hits must never be pushed out of that window
by other chats.
"""

from __future__ import annotations

import time

import pytest

from hermes_gateway.store import (
    SessionNotFoundError,
    SessionRecord,
    SessionStore,
    StoredMessage,
)
from hermes_gateway.store.session_store import RANK_WINDOW


def record(
    sid: str, key: str, t: float, *, ended: float | None = None, title: str | None = None
) -> SessionRecord:
    platform, chat_type, chat_id = key.split(":")[:3]
    return SessionRecord(
        id=sid,
        session_key=key,
        platform=platform,
        chat_type=chat_type,
        chat_id=chat_id,
        thread_id=None,
        user_id="1001",
        display_name="Alice",
        title=title,
        created_at=t,
        updated_at=t,
        ended_at=ended,
    )


async def test_import_keeps_times_ended_sessions_titles_and_totals(store: SessionStore) -> None:
    day = time.time() - 86400
    key = "telegram:dm:1001"
    await store.import_sessions(
        [
            record("old", key, day, ended=day + 3600, title="Router notes"),
            record("new", key, day + 3600),
        ]
    )
    msgs = [
        StoredMessage("user", "how do I reset the router", session_id="old", created_at=day + 10),
        StoredMessage(
            "assistant",
            "Hold the button.",
            prompt_tokens=100,
            completion_tokens=7,
            session_id="old",
            created_at=day + 20,
        ),
        StoredMessage("user", "hello again", session_id="new", created_at=day + 3700),
    ]
    ids = await store.import_messages(msgs)

    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [m.id for m in msgs] == ids
    old = await store.get_session("old")
    assert old is not None
    assert old.ended_at == day + 3600 and old.title == "Router notes"
    assert old.updated_at == day + 20  # moved up to its newest message, as appending would
    assert (old.message_count, old.last_preview) == (2, "Hold the button.")
    assert (old.prompt_tokens, old.completion_tokens) == (100, 7)
    assert (await store.get_active_session(key)).id == "new"  # type: ignore[union-attr]
    stored = await store.get_messages("old")
    assert [(m.id, m.created_at) for m in stored] == [(ids[0], day + 10), (ids[1], day + 20)]
    hits = await store.search("router")
    assert [(h.session_id, h.session_title, h.message_id) for h in hits] == [
        ("old", "Router notes", ids[0])
    ]
    # Appending afterwards continues the ids.
    more = await store.append_messages("new", [StoredMessage("assistant", "hi")])
    assert more[0] > ids[-1]


async def test_import_refuses_two_active_sessions_of_a_key_and_writes_nothing(
    store: SessionStore,
) -> None:
    t = time.time()
    with pytest.raises(ValueError, match="two active"):
        await store.import_sessions(
            [record("a", "telegram:dm:1", t), record("b", "telegram:dm:1", t + 1)]
        )
    with pytest.raises(ValueError, match="title"):
        await store.import_sessions(
            [
                record("c", "telegram:dm:2", t, title="Same"),
                record("d", "telegram:dm:3", t, title="same"),
            ]
        )
    assert await store.list_sessions() == []


async def test_import_messages_names_every_bad_message_and_writes_nothing(
    store: SessionStore,
) -> None:
    await store.import_sessions([record("s", "telegram:dm:1", time.time())])
    with pytest.raises(ValueError) as err:
        await store.import_messages(
            [
                StoredMessage("user", "fine", session_id="s"),
                StoredMessage("robot", "no", session_id="s"),
                StoredMessage("user", "orphan"),
            ]
        )
    assert "message 1: unknown role 'robot'" in str(err.value)
    assert "message 2: no session_id" in str(err.value)
    with pytest.raises(SessionNotFoundError):
        await store.import_messages(
            [
                StoredMessage("user", "fine", session_id="s"),
                StoredMessage("user", "lost", session_id="missing"),
            ]
        )
    assert await store.get_messages("s") == []


async def test_a_chats_search_is_not_crowded_out_by_many_newer_hits_elsewhere(
    store: SessionStore,
) -> None:
    t = time.time() - 1000
    await store.import_sessions(
        [record("mine", "telegram:dm:1", t), record("busy", "discord:channel:9", t)]
    )
    await store.import_messages(
        [StoredMessage("user", "the lighthouse keeper", session_id="mine", created_at=t)]
        + [
            StoredMessage("user", f"lighthouse photo {n}", session_id="busy", created_at=t + n)
            for n in range(RANK_WINDOW + 50)
        ]
    )
    mine = await store.search("lighthouse", limit=5, session_key="telegram:dm:1")
    assert [h.session_id for h in mine] == ["mine"]
    by_id = await store.search("lighthouse", limit=5, session_id="mine")
    assert [h.session_id for h in by_id] == ["mine"]
    everywhere = await store.search("lighthouse", limit=5)
    assert len(everywhere) == 5 and {h.session_id for h in everywhere} == {"busy"}


async def test_search_ranks_within_the_newest_window(store: SessionStore) -> None:
    """Below the window every hit is ranked: the best match wins even if it is the oldest;
    beyond it, the newest hits are ranked (and the old best is left out)."""
    t = time.time() - 5000
    await store.import_sessions([record("s", "telegram:dm:1", t)])
    best = "otter otter otter"
    filler = "a long message that mentions the otter once among many other words here"
    await store.import_messages(
        [StoredMessage("user", best, session_id="s", created_at=t)]
        + [
            StoredMessage("user", filler, session_id="s", created_at=t + 1 + n)
            for n in range(RANK_WINDOW - 1)
        ]
    )
    top = await store.search("otter", limit=1)
    assert top[0].snippet.count("[otter]") == 3  # all RANK_WINDOW hits ranked: best first
    await store.import_messages(
        [StoredMessage("user", filler, session_id="s", created_at=t + 4000)]
    )
    top = await store.search("otter", limit=1)
    assert top[0].snippet.count("[otter]") == 1  # the old best is now outside the window
