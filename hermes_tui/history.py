"""Input history with Up/Down recall, like a shell: the draft being typed is never lost."""

from __future__ import annotations


class InputHistory:
    def __init__(self, entries: list[str] | None = None, *, limit: int = 1000) -> None:
        self.entries: list[str] = list(entries or [])[-limit:]
        self.limit = limit
        self._index: int | None = None  # None = editing the draft
        self._draft = ""

    def add(self, text: str) -> bool:
        """Remember a sent line; False if it repeats the previous one (not stored twice)."""
        self._index = None
        if not text.strip() or (self.entries and self.entries[-1] == text):
            return False
        self.entries.append(text)
        del self.entries[: -self.limit]
        return True

    def previous(self, current: str) -> str | None:
        if not self.entries:
            return None
        if self._index is None:
            self._draft = current
            self._index = len(self.entries) - 1
        elif self._index > 0:
            self._index -= 1
        else:
            return None
        return self.entries[self._index]

    def next(self) -> str | None:
        if self._index is None:
            return None
        if self._index < len(self.entries) - 1:
            self._index += 1
            return self.entries[self._index]
        self._index = None
        return self._draft

    def reset(self) -> None:
        self._index = None
