"""Events the cron feature publishes (the TUI's Cron pane and the headless log read them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hermes_gateway.events import GatewayEvent

CronChange = Literal["added", "paused", "resumed", "removed", "run_requested"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CronJobChanged(GatewayEvent):
    """A cron job was added, paused, resumed, removed (by a person or once it was done)."""

    job_id: str
    change: CronChange
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CronRunStarted(GatewayEvent):
    """A job's run began in session ``session_key``; ``trigger`` is schedule or manual."""

    job_id: str
    name: str
    run_id: int
    session_key: str
    trigger: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CronRunFinished(GatewayEvent):
    """A run ended, or a slot was missed (``status="missed"``, no CronRunStarted before it).

    ``status`` is the task's result (ok, error, interrupted, missed) and ``delivery_status``
    the delivery's (ok, partial, failed, silent, local, skipped), kept apart on purpose.
    """

    job_id: str
    name: str
    run_id: int
    status: str
    error: str | None = None
    delivery_status: str | None = None
    delivery_error: str | None = None
    output_path: str | None = None
    duration: float = 0.0
    job_removed: bool = False
    local_text: str | None = None
    """A successful run's answer (clipped to :data:`LOCAL_TEXT_LIMIT`) when a target was
    ``local``: no chat received it, so the app shows it. None otherwise, and for a
    ``[SILENT]`` answer; the whole answer is in ``output_path``."""


LOCAL_TEXT_LIMIT = 4000
"""Characters of a locally delivered answer carried by the event (the bus keeps events)."""
