"""The platform half of delivery: what each adapter implements so the shared streaming and
progress code can write to its chats.

Its own module so that the stream consumer and the tool-progress message, which both write
through it, depend on it and not on each other.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["MessageTransport"]


class MessageTransport(Protocol):
    """The platform half of delivery, implemented by each adapter."""

    limit: int
    """Maximum message size in the platform's unit (4096 for Telegram, 2000 for Discord)."""

    def measure(self, text: str) -> int:
        """Size of ``text`` in the platform's unit (UTF-16 units, characters...)."""
        ...

    async def send_text(self, chat: str, text: str) -> str:
        """Send Markdown ``text`` (converting it, falling back to plain); return the id."""
        ...

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        """Replace a message's text; raise the ``errors`` types on failure."""
        ...
