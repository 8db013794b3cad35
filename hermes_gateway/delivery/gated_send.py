"""Whole messages and files through a chat's rate gate, the way every editing platform sends
them: split at the platform's limit in its own unit, each piece waiting its turn in the
chat's gate (so a 429 pauses that chat, not the caller, and pieces keep their order).

One place for what the Matrix and Mattermost adapters (and any new platform with a
:class:`~hermes_gateway.delivery.transport.MessageTransport` that uploads) did line for line.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

from hermes_gateway.delivery.chunking import split_message
from hermes_gateway.delivery.rate_gate import RateGate
from hermes_gateway.delivery.transport import MessageTransport

__all__ = ["UploadingTransport", "send_file_gated", "send_gated"]


class UploadingTransport(MessageTransport, Protocol):
    """A transport that can also upload a file into a chat."""

    async def send_file(self, chat: str, path: Path, caption: str = "") -> str: ...


async def send_gated(gate: RateGate, transport: MessageTransport, target: str, text: str) -> None:
    """Send ``text`` as as many messages as the platform's limit needs, in order."""
    for chunk in split_message(text, transport.limit, measure=transport.measure):
        await gate.run(target, functools.partial(transport.send_text, target, chunk))


async def send_file_gated(
    gate: RateGate, transport: UploadingTransport, target: str, path: Path, caption: str = ""
) -> None:
    """Upload one file into the chat, in its turn."""
    await gate.run(target, functools.partial(transport.send_file, target, path, caption))
