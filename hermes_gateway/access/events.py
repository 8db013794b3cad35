"""Events of the pairing and approval features: requests the operator decides, and outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hermes_gateway.events import GatewayEvent

PairingDecision = Literal["approved", "denied", "revoked", "expired", "cleared"]
ApprovalDecision = Literal["once", "session", "deny", "timeout", "cancelled"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PairingRequested(GatewayEvent):
    """Someone unknown wrote to the bot in a DM and was sent a pairing code.

    ``code`` is here only so the operator's dialog can show what the user was told; it is
    kept out of ``repr`` (and so out of any log line built from the event) and never stored.
    """

    platform: str
    user_id: str
    user_name: str | None
    chat_id: str
    chat_name: str | None
    created_at: float
    expires_at: float
    code: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PairingResolved(GatewayEvent):
    """A pairing request or an approved user changed state (``by``: tui, cli, expiry...)."""

    platform: str
    user_id: str
    decision: PairingDecision
    user_name: str | None = None
    by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested(GatewayEvent):
    """A tool call waits for the operator's answer (the agent is paused until then)."""

    request_id: str
    session_key: str
    session_id: str | None
    platform: str
    where: str
    """Who and which chat asked, as a person reads it (``Alice · telegram DM``)."""
    tool: str
    command: str
    reason: str
    timeout: float
    remote: bool = False
    """Whether the chat itself may answer with /approve or /deny."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalResolved(GatewayEvent):
    """An approval request was answered, timed out (deny) or was cancelled with its turn.

    ``auto`` marks a call let through by an earlier "approve for this session".
    """

    request_id: str
    session_key: str
    decision: ApprovalDecision
    by: str = ""
    tool: str = ""
    command: str = ""
    auto: bool = False
