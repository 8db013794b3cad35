"""The background feature's one event type (the TUI's Background pane and the headless log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hermes_gateway.events import GatewayEvent

__all__ = ["RESULT_LIMIT", "BackgroundRunChanged", "RunState"]

RunState = Literal["started", "progress", "finished", "failed", "stopped", "interrupted"]
"""``interrupted``: the gateway stopped (or was killed) mid-run; its chat is told at the
next start. The others are what they say; ``progress`` is one more tool step."""

RESULT_LIMIT = 4000
"""Characters of a run's result carried by the event (the bus keeps events; the whole answer
is in the run's session)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackgroundRunChanged(GatewayEvent):
    """A ``/background`` run started, took a tool step, or ended.

    ``origin_key`` is the chat that asked (its result goes there); ``session_key`` and
    ``session_id`` name the run's own session (its transcript); ``session_id`` is empty until
    the run's session exists.
    """

    run_id: str
    origin_key: str
    session_key: str
    state: RunState
    prompt: str = ""
    session_id: str = ""
    steps: int = 0
    """Tool calls made so far."""
    tool: str = ""
    """The tool of the latest step (``progress``)."""
    result: str = ""
    """The answer or the failure (clipped to :data:`RESULT_LIMIT`), once it ended."""
    delivery_error: str | None = None
    """Why the result could not be posted to its chat (None: posted, or nothing to post)."""
    started_at: float = 0.0
