"""Platform-independent delivery shared by the adapters that can edit messages.

Chunking to a platform's limit, Markdown to Telegram HTML, one rate gate per chat, the
stream consumer that turns an answer into a sent-then-edited message, and the tool
progress message. Adapters supply a :class:`MessageTransport` and translate their
library's errors into :mod:`hermes_gateway.delivery.errors`.
"""

from __future__ import annotations

from hermes_gateway.delivery.chunking import (
    Chunk,
    split_chunks,
    split_message,
    split_stream,
    truncate,
    utf16_len,
)
from hermes_gateway.delivery.errors import (
    DeliveryError,
    EditFailed,
    FormattingRejected,
    GateClosed,
    MessageGone,
    MessageNotModified,
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
)
from hermes_gateway.delivery.rate_gate import RateGate
from hermes_gateway.delivery.stream_consumer import MessageTransport, StreamConsumer, StreamingTurn
from hermes_gateway.delivery.telegram_format import markdown_to_telegram_html
from hermes_gateway.delivery.tool_progress import ToolProgressMessage, ToolProgressMode

TELEGRAM_LIMIT = 4096
"""UTF-16 code units per Telegram message (measure with :func:`utf16_len`)."""
DISCORD_LIMIT = 2000
"""Characters per Discord message (measure with ``len``)."""

__all__ = [
    "DISCORD_LIMIT",
    "TELEGRAM_LIMIT",
    "Chunk",
    "DeliveryError",
    "EditFailed",
    "MessageGone",
    "FormattingRejected",
    "GateClosed",
    "MessageNotModified",
    "MessageTransport",
    "PermanentDeliveryError",
    "RateGate",
    "RetryAfter",
    "StreamConsumer",
    "StreamingTurn",
    "ToolProgressMessage",
    "ToolProgressMode",
    "TransientDeliveryError",
    "markdown_to_telegram_html",
    "split_chunks",
    "split_message",
    "split_stream",
    "truncate",
    "utf16_len",
]
