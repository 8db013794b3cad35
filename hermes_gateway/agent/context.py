"""A session's context: what the model is sent, how big it is, where it may be cut.

A long chat outgrows any model's window. Older turns are then folded into a summary written
by the model (see :mod:`hermes_gateway.runner.context`). The summary is stored as one more
message of the session (role ``system``, ``meta["compaction"]`` naming the last message it
stands for), so nothing is deleted: the store keeps every original message, searchable, and
the *active context* is the latest summary followed by the messages after the ones it covers.

Cuts fall only before a user message, so an assistant's tool calls and their results always
stay on the same side: a model server refuses a history with a call but no result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hermes_gateway.store import StoredMessage

__all__ = [
    "DEFAULT_CONTEXT_LENGTH",
    "SUMMARY_PREFIX",
    "Plan",
    "active_context",
    "context_share",
    "effective_threshold",
    "estimate_tokens",
    "plan_compression",
]

DEFAULT_CONTEXT_LENGTH = 256_000
"""The window assumed when neither the config nor the server says (Hermes Agent's fallback)."""

SUMMARY_PREFIX = (
    "[Summary of the earlier conversation, written to save room; for reference only. "
    "The messages after it continue the conversation.]\n\n"
)

_PER_MESSAGE = 4
"""Tokens a chat template adds around each message."""


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A cheap upper-leaning count (characters / 4, as servers roughly count English)."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    text = part.get("text")
                    chars += len(text) if isinstance(text, str) else 1000  # an image
        for call in m.get("tool_calls") or []:
            if isinstance(call, dict):
                chars += len(json.dumps(call.get("function") or {}))
    return (chars + 3) // 4 + _PER_MESSAGE * len(messages)


def effective_threshold(threshold: float, context_length: int) -> float:
    """Hermes' rule: below a 512K window the trigger is at least 75% (a raise-only floor)."""
    if context_length < 512_000:
        return max(threshold, 0.75)
    return threshold


def summary_message(message: StoredMessage) -> dict[str, Any]:
    """A stored summary as the model reads it (a user-role note: one system message only,
    since many local servers' chat templates refuse a second)."""
    return {"role": "user", "content": SUMMARY_PREFIX + (message.content or "")}


def is_summary(message: StoredMessage) -> bool:
    return message.role == "system" and "compaction" in message.meta


def active(stored: list[StoredMessage]) -> tuple[StoredMessage | None, list[StoredMessage]]:
    """The latest summary (or None) and the stored messages after those it covers."""
    summary: StoredMessage | None = None
    for message in reversed(stored):
        if is_summary(message):
            summary = message
            break
    if summary is None:
        return None, [m for m in stored if m.role != "system"]
    through = int(summary.meta["compaction"].get("through") or 0)
    return summary, [
        m for m in stored if m.role != "system" and m.id is not None and m.id > through
    ]


def active_context(stored: list[StoredMessage]) -> list[dict[str, Any]]:
    """The session's messages as the model is sent them (after its latest summary)."""
    summary, rest = active(stored)
    head = [summary_message(summary)] if summary is not None else []
    return [*head, *(m.to_openai() for m in rest)]


@dataclass(frozen=True)
class Plan:
    """Fold ``head`` (with the previous summary, if any) into a new summary; keep ``tail``."""

    previous: StoredMessage | None
    head: list[StoredMessage]
    tail: list[StoredMessage]


def plan_compression(
    stored: list[StoredMessage], *, tail_tokens: int, protect_last_n: int, tail_cap: int
) -> Plan | None:
    """Where to cut the active context, or None if nothing can be folded.

    The tail keeps the recent messages: at least ``protect_last_n`` of them or
    ``tail_tokens`` worth, whichever is more, but never over ``tail_cap`` tokens; the cut is
    then moved to the next user message, so tool calls and results are never separated.
    """
    previous, rest = active(stored)
    if not rest:
        return None
    sizes = [estimate_tokens([m.to_openai()]) for m in rest]
    start, kept, tokens = len(rest), 0, 0
    while start > 0:
        size = sizes[start - 1]
        if kept >= protect_last_n and tokens >= tail_tokens:
            break
        if tokens + size > tail_cap and kept > 0:
            break
        start -= 1
        kept += 1
        tokens += size
    last_user = max((i for i, m in enumerate(rest) if m.role == "user"), default=-1)
    cut = next((i for i in range(start, len(rest)) if rest[i].role == "user"), last_user)
    cut = min(cut, last_user) if last_user >= 0 else -1
    if cut <= 0:
        return None  # no user message to cut before, or the whole context is the tail
    return Plan(previous=previous, head=rest[:cut], tail=rest[cut:])


def context_share(used: int, window: int) -> str:
    """``42% of 128k``: how full a model's window is."""
    if window <= 0:
        return "window unknown"
    size = f"{window // 1000}k" if window >= 1000 else str(window)
    return f"{round(100 * used / window)}% of {size}"
