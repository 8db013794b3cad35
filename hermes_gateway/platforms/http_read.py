"""Reading an HTTP body up to a limit, all of it.

aiohttp's ``StreamReader.read(n)`` returns what is buffered, *up to* ``n`` bytes: a body
larger than one TCP read comes back cut short, silently. Webhook bodies and downloaded media
are read here instead, chunk by chunk to the end, refusing anything past the limit without
holding more than ``limit`` bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import StreamReader

__all__ = ["TooLarge", "read_limited"]


class TooLarge(ValueError):
    """The body is larger than the limit."""


async def read_limited(stream: StreamReader, limit: int) -> bytes:
    """The whole body; :class:`TooLarge` as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in stream.iter_any():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
