"""Things the operator should look at, kept after their toast has faded.

Pairing and approval requests, failed cron runs and platform failures each leave an entry
here with a way to open what it is about; F9 lists them (newest first).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Opener = Callable[[], Awaitable[Any] | Any]


@dataclass
class Notification:
    title: str
    detail: str = ""
    severity: Literal["information", "warning", "error"] = "information"
    open: Opener | None = None
    ts: float = field(default_factory=time.time)
    seen: bool = False
    key: Any = None
    """What the entry is about (an approval or pairing request), to resolve it by."""


class NotificationCenter:
    def __init__(self, on_change: Callable[[int], None] | None = None, limit: int = 100) -> None:
        self.items: deque[Notification] = deque(maxlen=limit)
        self.on_change = on_change

    def add(self, notification: Notification) -> Notification:
        self.items.appendleft(notification)
        self._changed()
        return notification

    @property
    def unseen(self) -> int:
        return sum(1 for n in self.items if not n.seen)

    def resolve(self, key: Any, note: str = "answered") -> None:
        """A request was answered (here, in a chat or by the CLI): it leaves the count."""
        changed = False
        for item in self.items:
            if item.key == key and not item.seen:
                item.seen = True
                item.title = f"{item.title} ({note})"
                changed = True
        if changed:
            self._changed()

    def mark_all_seen(self) -> None:
        for item in self.items:
            item.seen = True
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.unseen)
