"""Telling a chat what became of a message sent while its answer was being written.

Without a word back, a follow-up sent mid-answer looks ignored until the answer ends. Hermes
Agent acknowledges it (``display.busy_ack_enabled``, and in steer mode also
``display.busy_steer_ack_enabled``, both on by default) at most once per 30 seconds per chat,
so a burst of follow-ups gets one line, not one each. The same keys and defaults here.
``/queue`` and ``/steer`` answer for themselves (see ``commands/flow.py``), so only plain
messages are acknowledged here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hermes_gateway.config import GatewayConfig

ACK_COOLDOWN = 30.0
"""Seconds after an acknowledgement in which a chat's further follow-ups get none."""

TEXTS = {
    "steered": "↪ Added to the answer being written: read at its next step.",
    "queued": "⏳ Queued: answered after the current one.",
    "interrupted": "⚡ Stopping the current answer to answer this instead.",
}

_PRUNE_AT = 4096


class BusyAcks:
    """Which follow-ups get an acknowledgement, and its text."""

    def __init__(self, config: GatewayConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._last: dict[str, float] = {}

    def text_for(self, session_key: str, outcome: str) -> str | None:
        """The line to send the chat for a follow-up given to its session as ``outcome``
        (``steered``, ``queued``, ``interrupted``), or None: acknowledgements off, a
        message that started a turn itself, or one acknowledged in the last 30 seconds."""
        text = TEXTS.get(outcome)
        if text is None or not self._config.busy_ack:
            return None
        if outcome == "steered" and not self._config.busy_steer_ack:
            return None
        now = self._clock()
        last = self._last.get(session_key)
        if last is not None and now - last < ACK_COOLDOWN:
            return None
        if len(self._last) >= _PRUNE_AT:  # thousands of chats: keep only the recent ones
            self._last = {k: t for k, t in self._last.items() if now - t < ACK_COOLDOWN}
        self._last[session_key] = now
        return text
