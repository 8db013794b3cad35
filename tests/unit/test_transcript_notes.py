"""Transcript notes: commands, replies and errors kept beside the messages, in place."""

from __future__ import annotations

from hermes_gateway.store import SessionStore, StoredMessage, TranscriptNote, merge_transcript


async def _session(store: SessionStore, key: str = "chat:dm:1"):
    return await store.create_session(key, platform="chat", chat_type="dm", chat_id="1")


def _kinds(items) -> list[str]:
    return [
        f"note:{i.meta.get('invocation', i.text)}" if isinstance(i, TranscriptNote) else i.content
        for i in items
    ]


async def test_notes_sort_after_the_message_they_followed(store: SessionStore) -> None:
    s = await _session(store)
    await store.add_note(s.id, "command", "Commands: ...", {"invocation": "/help", "ok": True})
    await store.append_messages(
        s.id, [StoredMessage("user", "q1"), StoredMessage("assistant", "a1")]
    )
    await store.add_note(s.id, "notice", "model down", {"level": "error"})
    await store.append_messages(s.id, [StoredMessage("user", "q2")])
    items = merge_transcript(await store.get_messages(s.id), await store.get_notes(s.id))
    assert _kinds(items) == ["note:/help", "q1", "a1", "note:model down", "q2"]
    assert (await store.get_notes(s.id))[0].meta == {"invocation": "/help", "ok": True}


async def test_undo_drops_the_notes_of_the_exchange_it_removes(store: SessionStore) -> None:
    s = await _session(store)
    await store.append_messages(
        s.id, [StoredMessage("user", "q1"), StoredMessage("assistant", "a1")]
    )
    await store.add_note(s.id, "command", "ok", {"invocation": "/status"})
    await store.append_messages(s.id, [StoredMessage("user", "q2")])
    await store.add_note(s.id, "notice", "turn failed", {"level": "error"})
    removed = await store.pop_last_turn(s.id)
    assert [m.content for m in removed] == ["q2"]
    items = merge_transcript(await store.get_messages(s.id), await store.get_notes(s.id))
    assert _kinds(items) == ["q1", "a1", "note:/status"]


async def test_notes_of_another_session_stay_apart_and_go_with_it(store: SessionStore) -> None:
    a = await _session(store, "chat:dm:1")
    b = await _session(store, "chat:dm:2")
    await store.add_note(a.id, "command", "mine", {"invocation": "/help"})
    assert await store.get_notes(b.id) == []
    assert [n.text for n in await store.get_notes(a.id)] == ["mine"]


async def test_a_huge_or_broken_note_is_cut_and_cleaned(store: SessionStore) -> None:
    s = await _session(store)
    await store.add_note(s.id, "command", "x" * 50_000 + "\ud800", {"invocation": "/help"})
    (note,) = await store.get_notes(s.id)
    assert len(note.text) == 20_000 and "\ud800" not in note.text
