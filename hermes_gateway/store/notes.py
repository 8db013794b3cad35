"""Transcript notes: what a chat's screen shows besides the conversation with the model.

Command invocations with their replies and turn errors are not messages (the model never sees
them), yet the operator saw them; storing them lets a reopened chat show exactly what was shown
before. Each note is anchored to the session's last message id when it was written, which is
all that is needed to put it back in place (:func:`merge_transcript`) and to drop it with the
exchange it belongs to (``pop_last_turn``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from hermes_gateway.text import clean_surrogates

from .records import StoredMessage

__all__ = ["NoteKind", "TranscriptNote", "merge_transcript"]

NoteKind = Literal["command", "notice"]

#: A note's text is cut to this many characters (a /help reply is well under it).
NOTE_CHARS = 20_000

_SQL_INSERT = """
INSERT INTO transcript_notes (session_id, anchor, kind, text, meta, created_at)
VALUES (?, (SELECT COALESCE(MAX(id), 0) FROM messages WHERE session_id = ?), ?, ?, ?, ?)
"""
_SQL_GET = (
    "SELECT id, session_id, anchor, kind, text, meta, created_at FROM transcript_notes "
    "WHERE session_id = ? ORDER BY anchor, id"
)
_SQL_DROP_FROM = "DELETE FROM transcript_notes WHERE session_id = ? AND anchor >= ?"


@dataclass
class TranscriptNote:
    """A command (``meta["invocation"]``, ``meta["ok"]``; ``text`` is the reply) or a notice
    (``meta["level"]``)."""

    kind: NoteKind
    text: str
    anchor: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    session_id: str | None = None
    created_at: float | None = None


def tx_add_note(
    conn: sqlite3.Connection, session_id: str, kind: NoteKind, text: str, meta: dict[str, Any]
) -> int:
    cur = conn.execute(
        _SQL_INSERT,
        (
            session_id,
            session_id,
            kind,
            clean_surrogates(text)[:NOTE_CHARS],
            json.dumps(meta, ensure_ascii=False) if meta else None,
            time.time(),
        ),
    )
    return int(cur.lastrowid or 0)


def get_notes(conn: sqlite3.Connection, session_id: str) -> list[TranscriptNote]:
    return [
        TranscriptNote(
            id=row[0],
            session_id=row[1],
            anchor=row[2],
            kind=row[3],
            text=row[4],
            meta=json.loads(row[5]) if row[5] else {},
            created_at=row[6],
        )
        for row in conn.execute(_SQL_GET, (session_id,))
    ]


def drop_notes_from(conn: sqlite3.Connection, session_id: str, first_message_id: int) -> None:
    """Drop the notes of an exchange being removed (those written once it had begun)."""
    conn.execute(_SQL_DROP_FROM, (session_id, first_message_id))


def merge_transcript(
    messages: list[StoredMessage], notes: list[TranscriptNote]
) -> list[StoredMessage | TranscriptNote]:
    """Messages and notes in the order they were shown: a note after its anchor message."""
    out: list[StoredMessage | TranscriptNote] = []
    pending = sorted(notes, key=lambda n: (n.anchor, n.id or 0))
    i = 0
    for message in messages:
        while i < len(pending) and pending[i].anchor < (message.id or 0):
            out.append(pending[i])
            i += 1
        out.append(message)
    out.extend(pending[i:])
    return out
