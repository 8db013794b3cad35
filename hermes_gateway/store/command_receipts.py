"""Command receipts: a slash command is recorded by its platform message id before it runs.

Ordinary messages are kept from running twice by the inbox; commands do not go through the
inbox (they run at once, even while the agent is busy), yet a platform hands them over again
just as it does messages: Telegram's journal replays what a kill left unconfirmed,
Mattermost's catch-up fetches the last seconds again at every start, a resumed Discord or
Slack session redelivers. ``/new`` run twice makes two sessions, ``/undo`` twice removes two
turns. So every command that comes with a platform message id gets a row here first:

- ``running``: written (in its own transaction) before the command runs.
- ``answered``: the command ran; ``reply`` is what the chat is being sent.
- ``done``: the reply was delivered (or there was none).

A repeat finds the row and is never run again: ``done`` is dropped silently, ``answered``
has its reply delivered (a kill cut that delivery short: at least once, never lost), and
``running`` left by an earlier process is told once that it was cut short, like a
``/background`` run a restart interrupted. Rows are pruned after :data:`KEEP` seconds.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass
from typing import Literal

from hermes_gateway.models import MessageEvent

from .session_store import SessionStore

__all__ = ["KEEP", "CommandReceipts", "Receipt", "receipt_key"]

KEEP = 7 * 24 * 3600.0
"""Seconds a receipt is kept: as long as the inbox keeps a done row, so a platform's late
redelivery is recognised the same way for commands and for messages."""
MAX_KEY = 256
"""Characters of a key stored as it is; a longer one (a forged or huge message id) is
stored as its SHA-256, so a hostile id costs a fixed size and can never fail the insert."""

State = Literal["running", "answered", "done"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an earlier delivery of the same message left."""

    command: str
    state: State
    reply: str | None


def receipt_key(event: MessageEvent) -> str | None:
    """``<session key>#<platform message id>`` (the inbox's form), or None when the command
    came without one (the terminal, the API): those are never recorded."""
    if event.from_operator or not event.message_id:
        return None
    raw = f"{event.session_key}#{event.message_id}"
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: SQLite cannot take them as text
        return _digest(raw)
    return raw if len(raw) <= MAX_KEY else _digest(raw)


def _digest(raw: str) -> str:
    return "sha256:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _claim(
    conn: sqlite3.Connection, platform: str, key: str, command: str, now: float
) -> tuple[str, str, str | None] | None:
    cur = conn.execute(
        "INSERT OR IGNORE INTO command_receipts (platform, dedupe_key, command, state, "
        "received_at) VALUES (?, ?, ?, 'running', ?)",
        (platform, key, command, now),
    )
    if cur.rowcount:
        return None
    row: tuple[str, str, str | None] = conn.execute(
        "SELECT command, state, reply FROM command_receipts WHERE platform = ? AND dedupe_key = ?",
        (platform, key),
    ).fetchone()
    return row


def _set(conn: sqlite3.Connection, platform: str, key: str, state: str, reply: str | None) -> None:
    conn.execute(
        "UPDATE command_receipts SET state = ?, reply = ? WHERE platform = ? AND dedupe_key = ?",
        (state, reply, platform, key),
    )


def _prune(conn: sqlite3.Connection, before: float) -> int:
    cur = conn.execute("DELETE FROM command_receipts WHERE received_at < ?", (before,))
    return cur.rowcount


class CommandReceipts:
    """The ``command_receipts`` table (migration 10) over a :class:`SessionStore`; every call
    is one transaction on the store's thread (never on the event loop)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def claim(self, platform: str, key: str, command: str) -> Receipt | None:
        """Record the command as ``running``; None if this is its first delivery, else what
        the earlier one left (nothing is written then)."""
        row = await self.store.write_sync(_claim, platform, key, command, time.time())
        if row is None:
            return None
        command_, state, reply = row
        return Receipt(command=command_, state=state, reply=reply)  # type: ignore[arg-type]

    async def answered(self, platform: str, key: str, reply: str) -> None:
        """The command ran; ``reply`` is about to be sent."""
        await self.store.write_sync(_set, platform, key, "answered", reply)

    async def done(self, platform: str, key: str) -> None:
        """Nothing more to do for this message (the reply, if any, was delivered)."""
        await self.store.write_sync(_set, platform, key, "done", None)

    async def prune(self, now: float | None = None) -> int:
        """Forget receipts older than :data:`KEEP`; how many."""
        return await self.store.write_sync(_prune, (now or time.time()) - KEEP)
