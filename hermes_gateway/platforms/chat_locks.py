"""One lock per chat, so an adapter hands a chat's messages over in the order they came.

Adapters read messages on one loop and hand each over in its own task (so a slow store does
not hold up the reading); a lock per chat keeps one chat's messages in order while chats go
on side by side. The map is bounded: past :data:`MAX_IDLE` chats, the idle locks are dropped
(a dropped lock is simply made again).
"""

from __future__ import annotations

import asyncio

MAX_IDLE = 1024


class ChatLocks:
    """``locks.of(chat)``: the lock for one chat's hand-overs."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def of(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > MAX_IDLE:
                for k in [k for k, v in self._locks.items() if not v.locked()]:
                    del self._locks[k]
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def __len__(self) -> int:
        return len(self._locks)
