"""Cron settings, read from the gateway's config without the core having to know about cron.

The values come from a ``cron:`` section of config.yaml when the configuration has one
(``config.cron`` with the field names below), then from environment variables, then from the
defaults here::

    cron:
      enabled: true             # HERMES_CRON_ENABLED
      timezone: Europe/Berlin   # HERMES_TIMEZONE, then TZ, then the system's zone, then UTC
      grace_minutes: 15         # HERMES_CRON_GRACE_MINUTES: a run missed by less runs at start
      output_keep: 50           # HERMES_CRON_OUTPUT_KEEP: output files kept per job
      output_max_age_days: 30   # HERMES_CRON_OUTPUT_MAX_AGE_DAYS: older outputs are deleted
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

__all__ = ["CronSettings", "system_timezone"]


@dataclass(frozen=True)
class CronSettings:
    """How the scheduler behaves; see the module docstring for where each value comes from."""

    enabled: bool = True
    timezone: str = "UTC"
    grace_minutes: float = 15.0
    output_keep: int = 50
    output_max_age_days: float = 30.0
    lease_seconds: float = 120.0
    """How long a claimed job stays locked without a heartbeat (a crashed owner's lock ends)."""

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.grace_minutes)

    @classmethod
    def from_config(cls, config: Any) -> CronSettings:
        """Settings from ``config.cron`` (if present), ``config.env`` and the defaults."""
        section = getattr(config, "cron", None)
        env: dict[str, str] = dict(getattr(config, "env", {}) or {})

        def pick(name: str, var: str, default: Any, kind: type) -> Any:
            value = getattr(section, name, None) if section is not None else None
            if value in (None, "") and env.get(var):
                value = env[var]
            if value in (None, ""):
                return default
            try:
                if kind is bool and isinstance(value, str):
                    return value.strip().lower() in {"1", "true", "yes", "on"}
                return kind(value)
            except (TypeError, ValueError):
                log.warning("ignoring bad cron setting %s=%r", name, value)
                return default

        wanted = pick("timezone", "HERMES_TIMEZONE", "", str) or str(
            getattr(config, "timezone", "") or ""
        )
        timezone = _usable_zone(wanted) or _usable_zone(env.get("TZ")) or system_timezone()
        if wanted and timezone != wanted:
            log.warning("unknown time zone %r for cron; using %s", wanted, timezone or "UTC")
        timezone = timezone or "UTC"
        return cls(
            enabled=pick("enabled", "HERMES_CRON_ENABLED", True, bool),
            timezone=timezone,
            grace_minutes=max(0.0, pick("grace_minutes", "HERMES_CRON_GRACE_MINUTES", 15.0, float)),
            output_keep=max(1, pick("output_keep", "HERMES_CRON_OUTPUT_KEEP", 50, int)),
            output_max_age_days=max(
                0.0, pick("output_max_age_days", "HERMES_CRON_OUTPUT_MAX_AGE_DAYS", 30.0, float)
            ),
        )


def _usable_zone(name: str | None) -> str:
    """``name`` if it is an IANA zone this machine knows, else ""."""
    if not name:
        return ""
    name = name.strip().lstrip(":")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    return name


def system_timezone() -> str:
    """The machine's IANA zone from the /etc/localtime link ("" when it cannot be told)."""
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return ""
    parts = Path(target).parts
    if "zoneinfo" in parts:
        name = "/".join(parts[parts.index("zoneinfo") + 1 :])
        return _usable_zone(name)
    return ""
