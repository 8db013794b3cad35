"""What the Telegram adapter remembers across restarts: the update journal and watermark.

Telegram takes an update as delivered once getUpdates is called with a higher offset, and a
bot must ask for the next batch to see new messages (an album's photos arrive over a second),
so an update cannot simply wait unconfirmed until it is handled. Instead every fetched update
is first written to the store's ``platform_journal`` table, and only then is the next offset
asked for; a row is deleted once its update is handled (stored in the gateway's inbox, or
deliberately ignored). After a crash the rows left are replayed, so nothing Telegram
delivered is lost; the inbox recognises a message it already stored, so nothing is answered
twice.

The watermark (the highest update id below which every update was handled) is kept in kv
too: after a restart Telegram may send again updates that were handled but not yet
confirmed, and the watermark is what skips them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hermes_gateway.store import SessionStore

__all__ = ["UpdateLedger"]

log = logging.getLogger(__name__)

FRESH_FOR = 6 * 24 * 3600.0
"""After a week without updates Telegram may restart update ids at a random value, so an
older remembered id must not be used to skip or confirm anything."""
WRITE_DELAY = 0.2
"""Seconds a watermark change or journal clean-up waits, so bursts cost one write."""


def _journal(conn: sqlite3.Connection, rows: list[tuple[str, int, str, float]]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO platform_journal (source, update_id, raw, received_at) "
        "VALUES (?, ?, ?, ?)",
        rows,
    )


def _forget(conn: sqlite3.Connection, source: str, ids: list[int]) -> None:
    conn.executemany(
        "DELETE FROM platform_journal WHERE source = ? AND update_id = ?",
        [(source, i) for i in ids],
    )


def _journaled(conn: sqlite3.Connection, source: str) -> list[tuple[int, str]]:
    return conn.execute(
        "SELECT update_id, raw FROM platform_journal WHERE source = ? ORDER BY update_id",
        (source,),
    ).fetchall()


class UpdateLedger:
    """Journal, in-flight set and watermark of one bot's updates (see the module docstring)."""

    def __init__(self) -> None:
        self.store: SessionStore | None = None
        self.skip_upto = 0
        """Updates with an id up to this were handled before the last restart."""
        self._key = ""
        self._inflight: set[int] = set()
        self._done: set[int] = set()
        """Finished above the watermark (an earlier update is still in flight)."""
        self._retry: set[int] = set()
        """Not storable by the gateway right now; kept journaled and tried again."""
        self._max_seen = 0
        self._mark = 0
        self._saved = 0
        self._to_forget: list[int] = []
        self._writer: asyncio.Task[None] | None = None

    async def load(self, store: SessionStore | None, bot_id: int) -> list[dict[str, Any]]:
        """Read the watermark; the updates a crash left in the journal (oldest first).

        They stay journaled until handled again, so a start that fails halfway loses none.
        Updates deferred to kv by an older version are returned too (and moved over).
        """
        self.store = store
        self._key = f"telegram:{bot_id}"
        if store is None:
            return []
        raw = await store.kv_get(f"{self._key}:last_update_id")
        if raw:
            try:
                data = json.loads(raw)
                if time.time() - float(data["at"]) < FRESH_FOR:
                    self.skip_upto = max(self.skip_upto, int(data["update_id"]))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring an unreadable Telegram offset in the store: %r", raw)
        self._mark = self._saved = max(self._mark, self.skip_upto)
        self._max_seen = max(self._max_seen, self.skip_upto)
        found: dict[int, dict[str, Any]] = {}
        legacy = await store.kv_get(f"{self._key}:deferred_updates")
        if legacy:
            try:
                for item in json.loads(legacy):
                    if isinstance(item, dict) and isinstance(item.get("update_id"), int):
                        found[item["update_id"]] = item
            except ValueError:
                log.warning("dropping unreadable deferred Telegram updates")
        for update_id, text in await store.read_sync(_journaled, self._key):
            try:
                found[update_id] = json.loads(text)
            except ValueError:
                log.warning("dropping an unreadable journaled Telegram update %s", update_id)
                await store.write_sync(_forget, self._key, [update_id])
        if legacy:
            await self.journal(list(found.values()))
            await store.kv_delete(f"{self._key}:deferred_updates")
        return [found[i] for i in sorted(found)]

    # --- the journal ------------------------------------------------------------------

    async def journal(self, updates: list[dict[str, Any]]) -> None:
        """Store raw updates durably (call before confirming them to Telegram).

        Raises whatever the store raises (disk full...): then nothing may be confirmed.
        """
        if self.store is None or not updates:
            return
        now = time.time()
        rows = [(self._key, int(u["update_id"]), json.dumps(u), now) for u in updates]
        await self.store.write_sync(_journal, rows)

    async def load_some(self, update_ids: list[int]) -> list[dict[str, Any]]:
        """Journaled raw updates by id (to try again after the gateway could not store them)."""
        if self.store is None:
            return []
        wanted = set(update_ids)
        rows = await self.store.read_sync(_journaled, self._key)
        return [json.loads(text) for update_id, text in rows if update_id in wanted]

    # --- what is handled ----------------------------------------------------------------

    def handled_before(self, update_id: int) -> bool:
        return update_id <= self.skip_upto

    def wants(self, update_id: int) -> bool:
        """Whether a fetched update is new work (not handled, not being handled)."""
        return (
            update_id > self._mark
            and update_id not in self._inflight
            and update_id not in self._done
            and update_id not in self._retry
        )

    def begin(self, update_id: int) -> None:
        self._retry.discard(update_id)
        self._inflight.add(update_id)
        self._max_seen = max(self._max_seen, update_id)

    def retry(self, update_ids: Iterable[int]) -> None:
        """The gateway could not store these yet: they stay journaled and hold the watermark."""
        ids = set(update_ids)
        self._inflight.difference_update(ids)
        self._retry.update(ids)

    def finish(self, update_ids: Iterable[int]) -> None:
        ids = set(update_ids)
        self._inflight.difference_update(ids)
        self._retry.difference_update(ids)
        self._done.update(ids)
        self._to_forget.extend(ids)
        open_ids = self._inflight | self._retry
        mark = (min(open_ids) - 1) if open_ids else self._max_seen
        self._done = {i for i in self._done if i > mark}
        self._mark = max(self._mark, mark)
        if self.store is not None and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    @property
    def watermark(self) -> int:
        return self._mark

    async def _write_soon(self) -> None:
        # Coalesce: under load one write covers many updates.
        await asyncio.sleep(WRITE_DELAY)
        await self._write()

    async def _write(self) -> None:
        store = self.store
        if store is None:
            return
        forget, self._to_forget = self._to_forget, []
        try:
            if forget:
                await store.write_sync(_forget, self._key, forget)
            while self._saved < self._mark:
                value = self._mark
                await store.kv_set(
                    f"{self._key}:last_update_id",
                    json.dumps({"update_id": value, "at": time.time()}),
                )
                self._saved = value
        except Exception:
            self._to_forget.extend(forget)  # replay then finds them handled (inbox dedupe)
            log.warning("could not save the Telegram update ledger", exc_info=True)

    async def flush(self) -> None:
        """Persist the watermark and forget handled updates (call on stop)."""
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._write()
