"""The one wiring point: which features a gateway started by ``hermes`` gets.

Both entry points (the TUI and ``hermes gateway run``) build their gateway here, so the core
stays free of the features built on it and both run the same set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hermes_cron.feature import CronFeature
from hermes_gateway.access.approvals import ApprovalsFeature
from hermes_gateway.access.pairing_gate import PairingFeature
from hermes_gateway.background.feature import BackgroundFeature
from hermes_gateway.gateway import Gateway
from hermes_gateway.home_channel import HomeChannelFeature
from hermes_gateway.hooks import HooksFeature

if TYPE_CHECKING:
    from hermes_cron.clock import Clock
    from hermes_gateway.config import Config
    from hermes_gateway.events import EventBus
    from hermes_gateway.features import Feature

__all__ = ["build_gateway", "default_features"]


def default_features(*, clock: Clock | None = None) -> list[Feature]:
    """Pairing, tool approvals, cron, background runs, /sethome and hooks, in the order they
    start."""
    return [
        PairingFeature(),
        ApprovalsFeature(),
        CronFeature(clock=clock),
        BackgroundFeature(),
        HomeChannelFeature(),
        HooksFeature(),
    ]


def build_gateway(
    config: Config, *, bus: EventBus | None = None, clock: Clock | None = None
) -> Gateway:
    """A gateway with every feature installed (``clock`` drives cron's scheduler)."""
    return Gateway(config, bus=bus, features=default_features(clock=clock))
