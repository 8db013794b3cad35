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

BURST = 2.0
"""Seconds after a turn started in which a chat's next messages belong to the same burst
(several messages sent at once, or a backlog fetched at a reconnect): no line for those."""

TEXTS = {
    "steered": "↪ Added to the answer being written: read at its next step.",
    "queued": "⏳ Queued: answered after the current one.",
    "interrupted": "⚡ Stopping the current answer to answer this instead.",
}

_PRUNE_AT = 4096


class BusyAcks:
    """Which follow-ups get an acknowledgement, and its text."""

    def __init__(
        self,
        config: GatewayConfig,
        clock: Callable[[], float] = time.monotonic,
        burst: float = BURST,
    ) -> None:
        self._config = config
        self._clock = clock
        self.burst = burst
        """Seconds after a turn's start in which the chat's messages are its burst."""
        self._last: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def text_for(self, session_key: str, outcome: str) -> str | None:
        """The line to send the chat for a follow-up given to its session as ``outcome``
        (``steered``, ``queued``, ``interrupted``), or None: acknowledgements off, a
        message that started a turn itself (``started``: noted, for the burst rule), one in
        the same burst as that, or one acknowledged in the last 30 seconds."""
        now = self._clock()
        if outcome == "started":
            if len(self._started) >= _PRUNE_AT:  # thousands of chats: only the recent ones
                self._started = {k: t for k, t in self._started.items() if now - t < self.burst}
            self._started[session_key] = now
            return None
        text = TEXTS.get(outcome)
        if text is None or not self._config.busy_ack:
            return None
        if outcome == "steered" and not self._config.busy_steer_ack:
            return None
        started = self._started.get(session_key)
        if started is not None and now - started < self.burst:
            return None
        last = self._last.get(session_key)
        if last is not None and now - last < ACK_COOLDOWN:
            return None
        if len(self._last) >= _PRUNE_AT:
            self._last = {k: t for k, t in self._last.items() if now - t < ACK_COOLDOWN}
        self._last[session_key] = now
        return text
