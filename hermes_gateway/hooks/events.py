"""The hooks feature's events: which hooks loaded (and which could not), and each failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hermes_gateway.events import GatewayEvent

__all__ = ["HookFailed", "HookInfo", "HookProblem", "HooksLoaded"]


@dataclass(frozen=True, slots=True)
class HookInfo:
    """A loaded hook, as listed to people."""

    name: str
    path: str
    events: tuple[str, ...]
    description: str = ""
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class HookProblem:
    """A hook directory that could not be loaded, and why (in words a person can act on)."""

    name: str
    path: str
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HooksLoaded(GatewayEvent):
    """The hooks directory was read: what runs from now on and what was skipped."""

    folder: str
    hooks: tuple[HookInfo, ...] = ()
    problems: tuple[HookProblem, ...] = ()


FailureKind = Literal["raised", "timeout", "skipped", "dropped"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HookFailed(GatewayEvent):
    """One hook call failed: it raised, ran past its timeout, was skipped because its previous
    call is still stuck, or its events were dropped because hooks fell behind."""

    hook: str
    event: str
    kind: FailureKind
    error: str
