"""The inbox: every inbound chat message, stored before the platform is told it arrived.

A message is written here (with the platform's own id, so a redelivered message is
recognised) before ``GatewayRunner.handle`` returns, which is what adapters wait for before
confirming an update to their platform. Its row then moves ``pending`` -> ``taken`` (in the
same transaction that stores it as the session's user message) -> ``answered`` (in the
transaction that stores the answer) -> ``done`` (the answer was delivered). After a crash the
rows not done are exactly the work left: pending ones are queued again, taken ones answered,
answered ones delivered again (or their senders told, by ``gateway.resume_unanswered``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hermes_gateway.models import MediaRef, MessageEvent, SessionSource

from .session_store import SessionStore

__all__ = ["Inbox", "InboxRow", "event_from_json", "event_to_json"]


def event_to_json(event: MessageEvent) -> str:
    """What is needed to run the message again after a restart (never the operator's)."""
    s = event.source
    return json.dumps(
        {
            "text": event.text,
            "source": {
                "platform": s.platform,
                "chat_id": s.chat_id,
                "chat_type": s.chat_type,
                "thread_id": s.thread_id,
                "user_id": s.user_id,
                "user_name": s.user_name,
                "chat_name": s.chat_name,
                "per_user": s.per_user,
            },
            "message_id": event.message_id,
            "reply_to_id": event.reply_to_id,
            "media": [
                {"path": m.path, "kind": m.kind, "mime_type": m.mime_type, "file_name": m.file_name}
                for m in event.media
            ],
            "roles": list(event.roles),
            "received_at": event.received_at,
        },
        ensure_ascii=False,
    )


def event_from_json(raw: str) -> MessageEvent:
    data: dict[str, Any] = json.loads(raw)
    src = data["source"]
    return MessageEvent(
        text=data.get("text", ""),
        source=SessionSource(
            platform=src["platform"],
            chat_id=src["chat_id"],
            chat_type=src.get("chat_type", "dm"),
            thread_id=src.get("thread_id"),
            user_id=src.get("user_id"),
            user_name=src.get("user_name"),
            chat_name=src.get("chat_name"),
            per_user=bool(src.get("per_user", False)),
        ),
        message_id=data.get("message_id"),
        reply_to_id=data.get("reply_to_id"),
        media=[MediaRef(**m) for m in data.get("media", [])],
        roles=tuple(data.get("roles", ())),
        received_at=float(data.get("received_at") or time.time()),
    )


@dataclass(frozen=True)
class InboxRow:
    id: int
    platform: str
    session_key: str
    event: MessageEvent
    received_at: float
    state: str
    session_id: str | None


def _add(conn: sqlite3.Connection, row: tuple[Any, ...]) -> int | None:
    cur = conn.execute(
        "INSERT OR IGNORE INTO inbox (platform, dedupe_key, session_key, event, received_at) "
        "VALUES (?, ?, ?, ?, ?)",
        row,
    )
    return cur.lastrowid if cur.rowcount else None


def _mark(conn: sqlite3.Connection, ids: list[int], state: str, session_id: str | None) -> None:
    now = time.time()
    conn.executemany(
        "UPDATE inbox SET state = ?, session_id = COALESCE(?, session_id), "
        "done_at = CASE WHEN ? = 'done' THEN ? ELSE done_at END WHERE id = ?",
        [(state, session_id, state, now, i) for i in ids],
    )


def _open(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, platform, session_key, event, received_at, state, session_id FROM inbox "
        "WHERE state != 'done' ORDER BY id"
    ).fetchall()


def _prune(conn: sqlite3.Connection, before: float) -> None:
    conn.execute("DELETE FROM inbox WHERE state = 'done' AND done_at < ?", (before,))


class Inbox:
    """The ``inbox`` table (migration 7) over a :class:`SessionStore`."""

    KEEP_DONE = 7 * 24 * 3600.0
    """Answered rows are kept a week, so a platform's late redelivery is still recognised."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    @staticmethod
    def dedupe_key(event: MessageEvent) -> str | None:
        """The platform's id of the message, unique per platform (None: cannot tell)."""
        if not event.message_id:
            return None
        return f"{event.session_key}#{event.message_id}"

    async def add(self, event: MessageEvent) -> int | None:
        """Store ``event``; its row id, or None if this platform message was stored before."""
        row = (
            event.source.platform,
            self.dedupe_key(event),
            event.session_key,
            event_to_json(event),
            event.received_at,
        )
        return await self.store.write_sync(_add, row)

    @staticmethod
    def taking(ids: Iterable[int | None], session_id: str) -> Callable[[sqlite3.Connection], None]:
        """For ``append_messages(also=...)``: mark rows taken with the user message."""
        wanted = [i for i in ids if i is not None]

        def mark(conn: sqlite3.Connection) -> None:
            if wanted:
                _mark(conn, wanted, "taken", session_id)

        return mark

    @staticmethod
    def marking(ids: Iterable[int | None], state: str) -> Callable[[sqlite3.Connection], None]:
        """For ``append_messages(also=...)``: move rows to ``state`` in that transaction
        (``answered`` with the stored answer, ``done`` with a message the operator answers)."""
        wanted = [i for i in ids if i is not None]

        def mark(conn: sqlite3.Connection) -> None:
            if wanted:
                _mark(conn, wanted, state, None)

        return mark

    async def done(self, ids: Iterable[int | None]) -> None:
        wanted = [i for i in ids if i is not None]
        if wanted:
            await self.store.write_sync(_mark, wanted, "done", None)

    async def last_answer(self, session_id: str) -> str | None:
        """The text of the session's last assistant message (to deliver it again)."""
        messages = await self.store.get_messages(session_id, limit=20)
        for message in reversed(messages):
            if message.role == "assistant" and message.content:
                return message.content
        return None

    async def open_rows(self) -> list[InboxRow]:
        """Rows not done, oldest first (the work a crash or a stop left)."""
        rows = await self.store.read_sync(_open)
        return [
            InboxRow(
                id=r[0],
                platform=r[1],
                session_key=r[2],
                event=event_from_json(r[3]),
                received_at=r[4],
                state=r[5],
                session_id=r[6],
            )
            for r in rows
        ]

    async def prune(self, now: float | None = None) -> None:
        await self.store.write_sync(_prune, (now or time.time()) - self.KEEP_DONE)
