"""When a chat's session expires (Hermes Agent's ``session_reset``): one pure check.

Every path that touches a session (a message, a command, an API request, the operator stepping
in, the first message after a restart, the background watcher) asks :func:`expiry` the same
question with the session's last activity, the policy of its chat and the current time, so
no path can keep an expired conversation alive. The clock is a parameter: tests move it.

Daily resets are computed in the configured zone with :mod:`zoneinfo`, so "4:00" stays 4:00
local time across a daylight-saving change (a day is not always 24 hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hermes_gateway.config import Config, SessionResetMode

__all__ = ["ResetPolicy", "ResetReason", "expiry", "last_boundary", "policy_for", "zone_of"]

ResetReason = Literal["idle", "daily"]

_HTTP_ALIASES = {"api": "api_server"}
"""Our platform names that Hermes Agent spells differently in ``notify_exclude_platforms``."""


@dataclass(frozen=True)
class ResetPolicy:
    """The resolved policy of one chat (``session_reset`` with its overrides applied)."""

    mode: SessionResetMode = "none"
    at_hour: int = 4
    idle_minutes: int = 1440
    notify: bool = True
    notify_exclude: frozenset[str] = frozenset({"api_server", "webhook"})

    def notifies(self, platform: str) -> bool:
        """Whether a chat of ``platform`` is told about a reset."""
        if not self.notify or platform == "local":
            return False
        return platform not in self.notify_exclude and (
            _HTTP_ALIASES.get(platform, platform) not in self.notify_exclude
        )

    def describe(self, reason: ResetReason) -> str:
        """Why, in words a chat user understands."""
        if reason == "daily":
            return f"daily reset at {self.at_hour:02d}:00"
        hours, minutes = divmod(self.idle_minutes, 60)
        span = f"{hours}h {minutes}m" if hours and minutes else f"{hours}h" if hours else ""
        return f"inactive for {span or f'{minutes}m'}"


def policy_for(config: Config, platform: str, chat_type: str) -> ResetPolicy:
    """The chat's policy: ``reset_by_platform`` over ``reset_by_type`` over ``session_reset``
    (Hermes' order); an override's unset keys keep ``session_reset``'s values."""
    base = config.session_reset
    values = {
        "mode": base.mode,
        "at_hour": base.at_hour,
        "idle_minutes": base.idle_minutes,
        "notify": base.notify,
    }
    override = config.reset_by_platform.get(platform)
    if override is None and platform == "api":
        override = config.reset_by_platform.get("api_server")
    if override is None:
        override = config.reset_by_type.get(chat_type)
    if override is not None:
        for name in values:
            value = getattr(override, name)
            if value is not None:
                values[name] = value
    return ResetPolicy(
        mode=values["mode"],  # type: ignore[arg-type]
        at_hour=int(values["at_hour"]),
        idle_minutes=int(values["idle_minutes"]),
        notify=bool(values["notify"]),
        notify_exclude=frozenset(base.notify_exclude_platforms),
    )


def zone_of(config: Config) -> tzinfo:
    """The zone daily resets follow: ``timezone``, else the machine's local zone."""
    if config.timezone:
        try:
            return ZoneInfo(config.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # the loader already refused unknown zones
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else ZoneInfo("UTC")


def last_boundary(now: float, at_hour: int, zone: tzinfo) -> float:
    """The latest daily reset moment at or before ``now`` (epoch seconds).

    Built from the local calendar date, not by subtracting 24 hours, so a 23- or 25-hour day
    still resets at the wall-clock hour. An hour that does not exist that day (skipped by a
    spring-forward change) resolves to the moment just after the gap.
    """
    local = datetime.fromtimestamp(now, zone)
    day = local.date()
    for _ in range(2):
        moment = datetime(day.year, day.month, day.day, at_hour, tzinfo=zone).timestamp()
        if moment <= now:
            return moment
        day -= timedelta(days=1)
    return moment


def expiry(last_active: float, policy: ResetPolicy, now: float, zone: tzinfo) -> ResetReason | None:
    """Why a session last active at ``last_active`` has expired at ``now``, or None.

    ``both`` expires on whichever comes first; an idle expiry is reported before a daily one
    when both apply (the longer silence is the better explanation).
    """
    if policy.mode == "none":
        return None
    if policy.mode in ("idle", "both") and now - last_active > policy.idle_minutes * 60:
        return "idle"
    if policy.mode in ("daily", "both") and last_active < last_boundary(now, policy.at_hour, zone):
        return "daily"
    return None


def cutoff(policy: ResetPolicy, now: float, zone: tzinfo) -> float | None:
    """Sessions last active before this moment may have expired under ``policy`` (None: none
    can): lets the watcher ask the store only for candidates."""
    if policy.mode == "none":
        return None
    bounds = []
    if policy.mode in ("idle", "both"):
        bounds.append(now - policy.idle_minutes * 60)
    if policy.mode in ("daily", "both"):
        bounds.append(last_boundary(now, policy.at_hour, zone))
    return max(bounds)
