"""What the Telegram adapter remembers across restarts, and how it paces reconnects.

:class:`UpdateLedger` keeps the highest update id below which every update has been handled
(delivered to the runner, deliberately ignored, or deferred), in the store's kv table.
python-telegram-bot confirms offsets to Telegram on a clean stop; after a crash Telegram
sends the unconfirmed updates again, and the ledger is what stops them from being answered
twice. Updates that reach the adapter while the gateway is shutting down are kept as
"deferred" and replayed on the next start, so a clean shutdown drops nothing.

:class:`Backoff` is exponential with jitter, so a fleet of bots (or one bot and its own
retries) does not hammer Telegram in lockstep after an outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hermes_gateway.store import SessionStore

__all__ = ["Backoff", "UpdateLedger"]

log = logging.getLogger(__name__)

FRESH_FOR = 6 * 24 * 3600.0
"""After a week without updates Telegram may restart update ids at a random value, so an
older remembered id must not be used to skip or confirm anything."""
WRITE_DELAY = 0.2
"""Seconds a watermark change waits before it is written, so bursts cost one write."""


class Backoff:
    """Delays of ``initial * 2**n`` seconds, each jittered by ±``jitter``, capped at ``cap``."""

    def __init__(
        self,
        initial: float,
        cap: float,
        *,
        jitter: float = 0.25,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial = max(0.01, initial)
        self.cap = max(self.initial, cap)
        self.jitter = jitter
        self._rng = rng
        self.attempt = 0

    def next(self) -> float:
        base: float = min(self.cap, self.initial * 2**self.attempt)
        self.attempt += 1
        spread = 1.0 + self.jitter * (2.0 * self._rng() - 1.0)
        return round(min(self.cap, base * spread), 3)

    def reset(self) -> None:
        self.attempt = 0


class UpdateLedger:
    """Tracks handled update ids and persists the watermark (see the module docstring)."""

    def __init__(self) -> None:
        self.store: SessionStore | None = None
        self.skip_upto = 0
        """Updates with an id up to this were handled before the last restart."""
        self.deferred: list[dict[str, Any]] = []
        self._key = ""
        self._inflight: set[int] = set()
        self._max_seen = 0
        self._mark = 0
        self._saved = 0
        self._writer: asyncio.Task[None] | None = None

    async def load(self, store: SessionStore | None, bot_id: int) -> list[dict[str, Any]]:
        """Read the watermark and the deferred updates.

        The deferred updates stay stored until :meth:`clear_deferred`, which the adapter calls
        once it has taken them in, so a start that fails halfway loses none of them.
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
        deferred_raw = await store.kv_get(f"{self._key}:deferred_updates")
        if not deferred_raw:
            return []
        try:
            deferred = json.loads(deferred_raw)
        except ValueError:
            log.warning("dropping unreadable deferred Telegram updates")
            return []
        return [d for d in deferred if isinstance(d, dict)]

    async def clear_deferred(self) -> None:
        if self.store is not None:
            await self.store.kv_delete(f"{self._key}:deferred_updates")

    def handled_before(self, update_id: int) -> bool:
        return update_id <= self.skip_upto

    def begin(self, update_id: int) -> None:
        self._inflight.add(update_id)
        self._max_seen = max(self._max_seen, update_id)

    def finish(self, update_ids: Iterable[int]) -> None:
        self._inflight.difference_update(update_ids)
        mark = (min(self._inflight) - 1) if self._inflight else self._max_seen
        if mark > self._mark:
            self._mark = mark
            if self.store is not None and (self._writer is None or self._writer.done()):
                self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    @property
    def watermark(self) -> int:
        return self._mark

    async def _write_soon(self) -> None:
        # Coalesce: under load one write covers many updates. Telegram itself is told about
        # handled updates by the very next poll, so this only narrows a crash window.
        await asyncio.sleep(WRITE_DELAY)
        await self._write()

    async def _write(self) -> None:
        store = self.store
        while store is not None and self._saved < self._mark:
            value = self._mark
            try:
                await store.kv_set(
                    f"{self._key}:last_update_id",
                    json.dumps({"update_id": value, "at": time.time()}),
                )
            except Exception:
                log.warning("could not save the Telegram offset", exc_info=True)
                return
            self._saved = value

    async def flush(self) -> None:
        """Persist the watermark and the deferred updates (call on stop)."""
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._write()
        if self.store is not None and self.deferred:
            try:
                await self.store.kv_set(f"{self._key}:deferred_updates", json.dumps(self.deferred))
                self.deferred = []
            except Exception:
                log.warning("could not save deferred Telegram updates", exc_info=True)
