"""Features: optional parts of the gateway installed at one wiring point.

Pairing, tool approvals and cron each arrive as one :class:`Feature` that brings its own
commands, tools and event types and is started and stopped with the gateway. The entry point
(the TUI or ``hermes gateway run``) chooses which features to install; the core imports none
of them, so ``hermes_cron`` sits above ``hermes_gateway`` and never the other way round.

Their tables stay in the store's one migration list (see ``store/migrations.py``): a
database's schema must not depend on which features a process happened to install, or a
CLI that installs fewer would take a newer database for a foreign one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hermes_gateway.access.policy import AccessPolicy
    from hermes_gateway.agent.loop import Agent
    from hermes_gateway.agent.tools.registry import ToolRegistry
    from hermes_gateway.config import Config
    from hermes_gateway.events import GatewayEvent
    from hermes_gateway.runner import GatewayRunner

__all__ = ["Feature", "FeatureContext"]


@dataclass(frozen=True)
class FeatureContext:
    """What a feature may plug into while it is installed."""

    config: Config
    runner: GatewayRunner
    agent: Agent
    tools: ToolRegistry
    policy: AccessPolicy


class Feature(Protocol):
    """One optional part of the gateway, installed before the platforms start."""

    name: str
    event_types: tuple[type[GatewayEvent], ...]
    """The events it publishes (the TUI maps each to a message; headless logs them)."""

    def install(self, ctx: FeatureContext) -> None:
        """Register commands, tools and hooks; called once, before ``start``."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def describe(self, event: GatewayEvent) -> tuple[int, str] | None:
        """A log line (level, text) for one of its events, for the headless log."""
        ...
