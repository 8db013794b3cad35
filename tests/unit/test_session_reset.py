"""The reset policies' one expiry check, with the clock as a parameter.

Why: every path that touches a session asks this function; a wrong answer either keeps a
conversation forever or wipes it mid-chat. Daily resets must follow the wall clock of the
configured zone, including on the 23- and 25-hour days of a daylight-saving change.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hermes_gateway.config import ConfigError, load_config
from hermes_gateway.paths import HermesPaths
from hermes_gateway.session_reset import (
    ResetPolicy,
    cutoff,
    expiry,
    last_boundary,
    policy_for,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")


def at(zone: ZoneInfo, *parts: int) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()  # type: ignore[misc]


def test_idle_expires_only_after_the_window() -> None:
    policy = ResetPolicy(mode="idle", idle_minutes=30)
    last = at(UTC, 2026, 3, 1, 12, 0)
    assert expiry(last, policy, last + 30 * 60, UTC) is None
    assert expiry(last, policy, last + 30 * 60 + 1, UTC) == "idle"


def test_daily_expires_at_the_hour_not_24_hours_later() -> None:
    policy = ResetPolicy(mode="daily", at_hour=4)
    last = at(UTC, 2026, 3, 1, 3, 59)
    assert expiry(last, policy, at(UTC, 2026, 3, 1, 3, 59, 59), UTC) is None
    assert expiry(last, policy, at(UTC, 2026, 3, 1, 4, 0), UTC) == "daily"
    after = at(UTC, 2026, 3, 1, 4, 1)  # active after today's reset: kept until tomorrow 4:00
    assert expiry(after, policy, at(UTC, 2026, 3, 2, 3, 59), UTC) is None
    assert expiry(after, policy, at(UTC, 2026, 3, 2, 4, 0), UTC) == "daily"


@pytest.mark.parametrize(
    ("zone", "day_before", "change_day"),
    [
        (BERLIN, (2026, 3, 28), (2026, 3, 29)),  # spring forward: a 23-hour day
        (BERLIN, (2026, 10, 24), (2026, 10, 25)),  # fall back: a 25-hour day
        (NEW_YORK, (2026, 3, 7), (2026, 3, 8)),
        (NEW_YORK, (2026, 10, 31), (2026, 11, 1)),
    ],
)
def test_daily_follows_the_wall_clock_across_a_dst_change(
    zone: ZoneInfo, day_before: tuple[int, int, int], change_day: tuple[int, int, int]
) -> None:
    policy = ResetPolicy(mode="daily", at_hour=4)
    last = at(zone, *day_before, 5, 0)
    # Still the same "day" one minute before 4:00 local on the day of the change, whatever
    # the number of hours in between; expired at 4:00 local exactly.
    assert expiry(last, policy, at(zone, *change_day, 3, 59), zone) is None
    assert expiry(last, policy, at(zone, *change_day, 4, 0), zone) == "daily"
    assert last_boundary(at(zone, *change_day, 12, 0), 4, zone) == at(zone, *change_day, 4, 0)


def test_daily_at_an_hour_the_spring_change_skips() -> None:
    """2:00 does not exist in Berlin on 2026-03-29: the reset happens when the gap ends."""
    policy = ResetPolicy(mode="daily", at_hour=2)
    last = at(BERLIN, 2026, 3, 28, 23, 0)
    gap_end = at(BERLIN, 2026, 3, 29, 3, 0)  # 3:00 CEST == 2:00 CET
    assert expiry(last, policy, gap_end - 1, BERLIN) is None
    assert expiry(last, policy, gap_end, BERLIN) == "daily"


def test_both_expires_on_whichever_comes_first_and_none_never() -> None:
    both = ResetPolicy(mode="both", idle_minutes=60, at_hour=4)
    last = at(UTC, 2026, 3, 1, 3, 30)
    assert expiry(last, both, at(UTC, 2026, 3, 1, 4, 0), UTC) == "daily"  # 30 min idle
    last = at(UTC, 2026, 3, 1, 10, 0)
    assert expiry(last, both, at(UTC, 2026, 3, 1, 11, 1), UTC) == "idle"  # before tomorrow
    never = ResetPolicy(mode="none")
    assert expiry(0.0, never, at(UTC, 2030, 1, 1), UTC) is None
    assert cutoff(never, at(UTC, 2030, 1, 1), UTC) is None


def test_cutoff_bounds_every_expired_session() -> None:
    """The watcher asks the store for sessions older than the cutoff only: an expired
    session must never be newer than it."""
    policy = ResetPolicy(mode="both", idle_minutes=90, at_hour=4)
    now = at(BERLIN, 2026, 10, 25, 9, 0)
    bound = cutoff(policy, now, BERLIN)
    assert bound is not None
    for minutes in range(0, 48 * 60, 7):
        last = now - minutes * 60
        if expiry(last, policy, now, BERLIN) is not None:
            assert last < bound


def write_config(home: Path, text: str) -> HermesPaths:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(text)
    return HermesPaths(home)


def test_overrides_per_platform_win_over_per_chat_type(tmp_path: Path) -> None:
    paths = write_config(
        tmp_path / "h",
        "session_reset: {mode: idle, idle_minutes: 600, notify: true}\n"
        "reset_by_platform:\n  telegram: {idle_minutes: 5}\n  api_server: {mode: none}\n"
        "reset_by_type:\n  group: {mode: daily, at_hour: 6, notify: false}\n",
    )
    config = load_config(paths, {})
    assert policy_for(config, "discord", "dm") == ResetPolicy(mode="idle", idle_minutes=600)
    assert policy_for(config, "telegram", "group").idle_minutes == 5  # platform first
    assert policy_for(config, "telegram", "group").mode == "idle"  # unset: session_reset's
    group = policy_for(config, "discord", "group")
    assert (group.mode, group.at_hour, group.notify) == ("daily", 6, False)
    assert policy_for(config, "api", "dm").mode == "none"  # Hermes' name for our "api"


def test_who_is_told() -> None:
    policy = ResetPolicy(mode="idle")
    assert policy.notifies("telegram") and policy.notifies("discord")
    assert not policy.notifies("api") and not policy.notifies("webhook")
    assert not policy.notifies("local")  # the operator sees the Notice in the app
    assert not ResetPolicy(mode="idle", notify=False).notifies("telegram")
    assert policy.describe("idle") == "inactive for 24h"
    assert ResetPolicy(idle_minutes=90).describe("idle") == "inactive for 1h 30m"
    assert ResetPolicy(at_hour=4).describe("daily") == "daily reset at 04:00"


def test_a_bad_override_names_its_key(tmp_path: Path) -> None:
    paths = write_config(tmp_path / "h", "reset_by_type:\n  group: {mode: weekly}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(paths, {})
    assert "reset_by_type.group.mode" in str(caught.value)
