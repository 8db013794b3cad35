"""Tests for hermes_cron.schedules: parsing, next runs across time zones and DST, words.

Every datetime is fixed; nothing reads the wall clock. DST dates used (2026):
Europe/Berlin springs forward 29 Mar 02:00 CET -> 03:00 CEST (01:00 UTC) and falls back
25 Oct 03:00 CEST -> 02:00 CET (01:00 UTC); America/New_York springs forward 8 Mar
02:00 EST -> 03:00 EDT (07:00 UTC) and falls back 1 Nov 02:00 EDT -> 01:00 EST (06:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from hermes_cron.schedules import (
    ACCEPTED_FORMS,
    CronSchedule,
    IntervalSchedule,
    OneShotSchedule,
    Schedule,
    ScheduleError,
    format_countdown,
    parse_schedule,
)

NOW = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)  # a Saturday; 15:00 in Berlin
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def runs(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` runs, chaining next_run the way the scheduler does."""
    out: list[datetime] = []
    for _ in range(count):
        nxt = schedule.next_run(after)
        assert nxt is not None
        out.append(nxt)
        after = nxt
    return out


# --------------------------------------------------------------------------------------------
# Parsing and round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "expr"),
    [
        ("0 9 * * 1-5", "cron", "0 9 * * 1-5"),
        ("  0   9 * *   MON-FRI ", "cron", "0 9 * * mon-fri"),
        ("@daily", "cron", "0 0 * * *"),
        ("@hourly", "cron", "0 * * * *"),
        ("every 30m", "interval", "every 30m from 2026-11-21T14:00:00Z"),
        ("every 2h", "interval", "every 2h from 2026-11-21T14:00:00Z"),
        ("every 1d", "interval", "every 1d from 2026-11-21T14:00:00Z"),
        ("every 1h30m", "interval", "every 1h30m from 2026-11-21T14:00:00Z"),
        ("Every 90 minutes", "interval", "every 1h30m from 2026-11-21T14:00:00Z"),
        ("every 1h 30m", "interval", "every 1h30m from 2026-11-21T14:00:00Z"),
        ("every 1w", "interval", "every 7d from 2026-11-21T14:00:00Z"),
        (
            "every 30m from 2026-11-01T08:00",  # naive anchor = Berlin time (CET, +01:00)
            "interval",
            "every 30m from 2026-11-01T07:00:00Z",
        ),
        ("in 45m", "once", "2026-11-21T15:45:00+01:00"),
        ("in 2h", "once", "2026-11-21T17:00:00+01:00"),
        ("in 1d", "once", "2026-11-22T15:00:00+01:00"),
        ("In 2 hours", "once", "2026-11-21T17:00:00+01:00"),
        ("2026-12-01T09:00", "once", "2026-12-01T09:00:00+01:00"),
        ("2026-12-01 09:00", "once", "2026-12-01T09:00:00+01:00"),
        ("2026-12-01T09:00+03:00", "once", "2026-12-01T07:00:00+01:00"),
        ("2026-12-01T09:00Z", "once", "2026-12-01T10:00:00+01:00"),
        ("at 2026-12-01T09:00", "once", "2026-12-01T09:00:00+01:00"),
        ("once at 2026-12-01T09:00", "once", "2026-12-01T09:00:00+01:00"),
    ],
)
def test_every_form_parses_and_round_trips(text: str, kind: str, expr: str) -> None:
    schedule = parse_schedule(text, tz=BERLIN, now=NOW)
    assert schedule.kind == kind
    assert schedule.expr == expr
    assert schedule.tz == BERLIN
    assert schedule.is_one_shot is (kind == "once")
    # The stored text parses back to an equal schedule, also much later (a restart next year).
    later = NOW + timedelta(days=400)
    assert parse_schedule(expr, tz=BERLIN, now=later, allow_past=True) == schedule
    assert parse_schedule(expr, tz=BERLIN, now=NOW) == schedule
    assert parse_schedule(expr, tz=BERLIN, now=NOW).expr == expr


def test_kinds_map_to_classes() -> None:
    assert isinstance(parse_schedule("0 9 * * *", now=NOW), CronSchedule)
    assert isinstance(parse_schedule("every 5m", now=NOW), IntervalSchedule)
    assert isinstance(parse_schedule("in 5m", now=NOW), OneShotSchedule)


def test_zoneinfo_object_is_accepted_and_stored_by_name() -> None:
    schedule = parse_schedule("0 9 * * *", tz=ZoneInfo(NEW_YORK), now=NOW)
    assert schedule.tz == NEW_YORK
    assert schedule == parse_schedule("0 9 * * *", tz=NEW_YORK, now=NOW)


def test_default_time_zone_is_utc() -> None:
    schedule = parse_schedule("2026-12-01T09:00", now=NOW)
    assert schedule.tz == "UTC"
    assert schedule.expr == "2026-12-01T09:00:00+00:00"


def test_schedules_are_hashable_values() -> None:
    a = parse_schedule("every 30m", tz=BERLIN, now=NOW)
    b = parse_schedule(a.expr, tz=BERLIN, now=NOW + timedelta(hours=5))
    assert {a, b} == {a}
    with pytest.raises(AttributeError):
        a.expr = "every 1m"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def parse_error(text: str, tz: str = BERLIN, now: datetime = NOW) -> str:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text, tz=tz, now=now)
    return str(info.value)


def test_bare_duration_asks_which_was_meant() -> None:
    message = parse_error("30m")
    assert '"30m" is ambiguous' in message
    assert '"every 30m"' in message
    assert '"in 30m"' in message
    assert '"every 2h"' in parse_error("2h")


def test_schedule_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_schedule("nonsense", now=NOW)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("every 0m", ["interval must be at least 1 minute"]),
        ("every 30s", ["seconds are not supported", "shortest interval is 1 minute", "every 1m"]),
        ("every 90s", ["seconds are not supported", "shortest interval is 1 minute"]),
        ("every 1m30s", ["seconds are not supported"]),
        ("in 30s", ["seconds are not supported", "shortest delay is 1 minute", "in 1m"]),
        ("in 0h", ["delay must be at least 1 minute"]),
        ("every 366d", ["at most 365 days"]),
        ("every 99999999999999999999d", ["at most 365 days"]),
        ("every 3 fortnights", ['unknown unit "fortnights"']),
        ("every", ["Cannot read the duration", '"30m"']),
        ("every day at 9", ["Cannot read the duration"]),
        ("every 30m from yesterday", ['after "from"', "every 30m from 2026-11-21T14:00:00Z"]),
        ("garbage", ['Cannot understand the schedule "garbage"', ACCEPTED_FORMS]),
        ("", ["The schedule is empty", ACCEPTED_FORMS]),
        ("tomorrow at 9", ["Cannot understand", "0 9 * * 1-5", "every 30m", "in 45m"]),
        ("@reboot", ['Unknown cron macro "@reboot"', "@daily"]),
        ("* * * *", ["Cannot understand"]),
        ("0 0 9 * * *", ["has 6 fields", "exactly 5"]),
        ("61 * * * *", ['minute field "61" is not valid', "0-59"]),
        ("0 24 * * *", ['hour field "24" is not valid', "0-23"]),
        ("0 9 32 * *", ['day-of-month field "32"', "1-31"]),
        ("0 9 * 13 *", ['month field "13"', "1-12"]),
        ("0 9 * * 8", ['day-of-week field "8"', "0-7 or sun-sat"]),
        ("0 9 * * funday", ['day-of-week field "funday"']),
        ("*/0 * * * *", ['minute field "*/0"']),
        ("H 9 * * *", ['minute field "H"', "hashed"]),
        ("0 9 31 2 *", ["never matches a real date"]),
        ("2026-01-01T09:00", ["is in the past", "2026-11-21 15:00 Europe/Berlin", "future"]),
        ("2026-11-21T15:00", ["is in the past"]),  # exactly now is not in the future
        ("2026-11-21T13:00:00Z", ["is in the past"]),
        ("2026-12-01", ["has no time of day"]),
        ("2026-13-01T09:00", ["not a valid date and time"]),
        ("2026-03-29T02:30", ["does not exist in Europe/Berlin", "daylight saving"]),
    ],
)
def test_errors_explain_the_problem(text: str, fragments: list[str]) -> None:
    message = parse_error(text)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_unknown_time_zone() -> None:
    message = parse_error("0 9 * * *", tz="Mars/Olympus_Mons")
    assert 'Unknown time zone "Mars/Olympus_Mons"' in message
    assert "Europe/Berlin" in message


def test_naive_now_and_after_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("in 5m", now=datetime(2026, 11, 21, 14, 0))
    schedule = parse_schedule("0 9 * * *", now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_run(datetime(2026, 11, 21, 14, 0))


# --------------------------------------------------------------------------------------------
# next_run: cron
# --------------------------------------------------------------------------------------------


def test_cron_weekdays_in_berlin_winter() -> None:
    schedule = parse_schedule("0 9 * * 1-5", tz=BERLIN, now=NOW)
    # Saturday 21 Nov -> Monday 23 Nov 09:00 CET = 08:00 UTC, then Tuesday.
    assert runs(schedule, NOW, 3) == [
        utc(2026, 11, 23, 8),
        utc(2026, 11, 24, 8),
        utc(2026, 11, 25, 8),
    ]
    result = schedule.next_run(NOW)
    assert result is not None and result.tzinfo is UTC


def test_cron_is_local_wall_clock_summer_and_winter() -> None:
    schedule = parse_schedule("0 9 * * *", tz=BERLIN, now=NOW)
    assert schedule.next_run(utc(2026, 7, 1)) == utc(2026, 7, 1, 7)  # CEST +02:00
    assert schedule.next_run(utc(2026, 12, 1)) == utc(2026, 12, 1, 8)  # CET +01:00


def test_cron_accepts_after_in_any_zone_and_is_strictly_after() -> None:
    schedule = parse_schedule("0 9 * * *", tz=NEW_YORK, now=NOW)
    # 09:00 EST = 14:00 UTC. Given in Berlin time, the same instant.
    at_run = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo(BERLIN))
    assert schedule.next_run(at_run) == utc(2026, 12, 2, 14)
    assert schedule.next_run(at_run - timedelta(seconds=1)) == utc(2026, 12, 1, 14)


def test_cron_weekdays_in_new_york_across_spring_forward() -> None:
    schedule = parse_schedule("0 9 * * 1-5", tz=NEW_YORK, now=NOW)
    # Friday 6 Mar 09:00 EST = 14:00 UTC; Monday 9 Mar 09:00 EDT = 13:00 UTC.
    assert runs(schedule, utc(2026, 3, 6, 12), 2) == [utc(2026, 3, 6, 14), utc(2026, 3, 9, 13)]


def test_berlin_spring_forward_daily_0230_runs_at_0300() -> None:
    """02:30 does not exist on 29 Mar: the job runs once when the clocks jump (03:00 CEST)."""
    schedule = parse_schedule("30 2 * * *", tz=BERLIN, now=NOW)
    assert runs(schedule, utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 1),  # 03:00 CEST, the moment of the jump
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST the next day
    ]
    # Two skipped times (02:00 and 02:30) collapse into one run, not two.
    both = parse_schedule("0,30 2 * * *", tz=BERLIN, now=NOW)
    assert runs(both, utc(2026, 3, 28, 12), 2) == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)]


def test_berlin_fall_back_daily_0230_runs_once() -> None:
    """02:30 happens twice on 25 Oct: the job runs at the first one only."""
    schedule = parse_schedule("30 2 * * *", tz=BERLIN, now=NOW)
    assert runs(schedule, utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 26, 1, 30),  # 02:30 CET the next day; not 01:30 UTC on the 25th
    ]
    # Asked from inside the second pass of the repeated hour, still no second run.
    assert schedule.next_run(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 26, 1, 30)


def test_berlin_fall_back_hourly_jobs_keep_running_every_hour() -> None:
    hourly = parse_schedule("0 * * * *", tz=BERLIN, now=NOW)
    assert runs(hourly, utc(2026, 10, 24, 23, 30), 3) == [
        utc(2026, 10, 25, 0),  # 02:00 CEST
        utc(2026, 10, 25, 1),  # 02:00 CET (second pass): an hour has passed
        utc(2026, 10, 25, 2),  # 03:00 CET
    ]
    half_hourly = parse_schedule("*/30 * * * *", tz=BERLIN, now=NOW)
    got = runs(half_hourly, utc(2026, 10, 24, 23, 50), 6)
    assert got == [utc(2026, 10, 25, 0) + timedelta(minutes=30 * i) for i in range(6)]


def test_new_york_spring_forward_and_fall_back() -> None:
    skipped = parse_schedule("30 2 * * *", tz=NEW_YORK, now=NOW)
    assert runs(skipped, utc(2026, 3, 7, 12), 2) == [
        utc(2026, 3, 8, 7),  # 03:00 EDT, when 02:00 EST jumps
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]
    repeated = parse_schedule("30 1 * * *", tz=NEW_YORK, now=NOW)
    assert runs(repeated, utc(2026, 10, 31, 12), 2) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 2, 6, 30),  # 01:30 EST next day; the 06:30 UTC repeat on 1 Nov is skipped
    ]


def test_every_n_minutes_crosses_spring_forward_without_duplicates() -> None:
    schedule = parse_schedule("*/15 * * * *", tz=BERLIN, now=NOW)
    assert runs(schedule, utc(2026, 3, 29, 0, 30), 4) == [
        utc(2026, 3, 29, 0, 45),  # 01:45 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST (02:00-02:45 skipped, folded into the jump)
        utc(2026, 3, 29, 1, 15),
        utc(2026, 3, 29, 1, 30),
    ]


def reference_runs(expr: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Independent model of the DST policy: walk real time minute by minute.

    A job fires at a UTC minute when its local wall time matches, except on the second pass
    of a repeated hour (unless the hour field is "*"); at the instant the clocks jump forward
    it also fires if any skipped wall time matches.
    """
    zone = ZoneInfo(tz)
    hour_wildcard = expr.split()[1] == "*"
    out = []
    t = start
    while t < end:
        local = t.astimezone(zone)
        wall = local.replace(tzinfo=None)
        fire = croniter.match(expr, wall) and (local.fold == 0 or hour_wildcard)
        prev = (t - timedelta(minutes=1)).astimezone(zone)
        jump = (local.utcoffset() or timedelta(0)) - (prev.utcoffset() or timedelta(0))
        if jump > timedelta(0):
            skipped = prev.replace(tzinfo=None) + timedelta(minutes=1)
            while skipped < wall:
                fire = fire or croniter.match(expr, skipped)
                skipped += timedelta(minutes=1)
        if fire:
            out.append(t)
        t += timedelta(minutes=1)
    return out


@pytest.mark.parametrize(
    ("tz", "transition"),
    [
        (BERLIN, utc(2026, 3, 29, 1)),
        (BERLIN, utc(2026, 10, 25, 1)),
        (NEW_YORK, utc(2026, 3, 8, 7)),
        (NEW_YORK, utc(2026, 11, 1, 6)),
        ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),  # 30-minute DST shift
        ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ],
)
@pytest.mark.parametrize(
    "expr",
    ["30 2 * * *", "0 * * * *", "*/20 * * * *", "15 1-3 * * *", "*/10 2 * * *", "0 */2 * * *"],
)
def test_cron_matches_minute_by_minute_model_around_dst(
    tz: str, transition: datetime, expr: str
) -> None:
    start = transition - timedelta(hours=4)
    end = transition + timedelta(hours=4)
    expected = reference_runs(expr, tz, start, end)
    schedule = parse_schedule(expr, tz=tz, now=NOW)
    got = []
    after = start - timedelta(minutes=1)
    while (nxt := schedule.next_run(after)) is not None and nxt < end:
        got.append(nxt)
        after = nxt
    assert got == expected


# --------------------------------------------------------------------------------------------
# next_run: intervals and one-shots
# --------------------------------------------------------------------------------------------


def test_interval_counts_from_its_anchor() -> None:
    schedule = parse_schedule("every 30m", tz=BERLIN, now=NOW)
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.anchor == NOW
    assert schedule.every == timedelta(minutes=30)
    assert schedule.next_run(NOW) == utc(2026, 11, 21, 14, 30)  # first run one period later
    assert schedule.next_run(NOW - timedelta(hours=3)) == utc(2026, 11, 21, 14, 30)
    assert schedule.next_run(utc(2026, 11, 21, 14, 29, 59)) == utc(2026, 11, 21, 14, 30)
    assert schedule.next_run(utc(2026, 11, 21, 14, 30)) == utc(2026, 11, 21, 15, 0)
    # A scheduler that was down for days resumes on the same grid, not from when it woke.
    assert schedule.next_run(utc(2026, 11, 25, 9, 7)) == utc(2026, 11, 25, 9, 30)


def test_interval_anchor_drops_microseconds() -> None:
    schedule = parse_schedule("every 1h30m", tz=BERLIN, now=NOW.replace(microsecond=987654))
    assert schedule.expr == "every 1h30m from 2026-11-21T14:00:00Z"
    assert schedule.next_run(NOW) == utc(2026, 11, 21, 15, 30)


def test_interval_is_elapsed_time_across_dst() -> None:
    """'every 1d' keeps 24 h steps, so the local time moves when Berlin falls back."""
    schedule = parse_schedule("every 1d", tz=BERLIN, now=utc(2026, 10, 24, 7))  # 09:00 CEST
    assert runs(schedule, utc(2026, 10, 24, 7), 2) == [utc(2026, 10, 25, 7), utc(2026, 10, 26, 7)]
    assert utc(2026, 10, 26, 7).astimezone(ZoneInfo(BERLIN)).hour == 8


def test_one_shot_at_local_iso_time() -> None:
    schedule = parse_schedule("2026-12-01T09:00", tz=NEW_YORK, now=NOW)
    at = utc(2026, 12, 1, 14)  # 09:00 EST
    assert schedule.next_run(NOW) == at
    assert schedule.next_run(at - timedelta(seconds=1)) == at
    assert schedule.next_run(at) is None
    assert schedule.next_run(at + timedelta(days=1)) is None
    assert schedule.expr == "2026-12-01T09:00:00-05:00"


def test_one_shot_in_repeated_hour_means_first_occurrence() -> None:
    now = utc(2026, 10, 20)
    schedule = parse_schedule("2026-10-25T02:30", tz=BERLIN, now=now)
    assert schedule.next_run(now) == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert schedule.expr == "2026-10-25T02:30:00+02:00"
    # The second 02:30 can still be chosen with an explicit offset, and survives a round trip.
    second = parse_schedule("2026-10-25T02:30+01:00", tz=BERLIN, now=now)
    assert second.next_run(now) == utc(2026, 10, 25, 1, 30)
    assert parse_schedule(second.expr, tz=BERLIN, now=now) == second


def test_relative_one_shot_counts_from_now() -> None:
    schedule = parse_schedule("in 45m", tz=BERLIN, now=NOW)
    assert schedule.is_one_shot
    assert schedule.next_run(NOW) == NOW + timedelta(minutes=45)
    assert schedule.next_run(NOW + timedelta(minutes=45)) is None


def test_stored_one_shot_reloads_after_it_passed() -> None:
    schedule = parse_schedule("in 2h", tz=BERLIN, now=NOW)
    later = NOW + timedelta(days=1)
    with pytest.raises(ScheduleError, match="in the past"):
        parse_schedule(schedule.expr, tz=BERLIN, now=later)
    reloaded = parse_schedule(schedule.expr, tz=BERLIN, now=later, allow_past=True)
    assert reloaded == schedule
    assert reloaded.next_run(later) is None


# --------------------------------------------------------------------------------------------
# describe()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0 9 * * *", "every day at 09:00"),
        ("0 9 * * 1-5", "every weekday at 09:00"),
        ("0 9 * * mon-fri", "every weekday at 09:00"),
        ("0 9 ? * MON", "every Monday at 09:00"),
        ("30 8 * * 1", "every Monday at 08:30"),
        ("30 8 * * MON", "every Monday at 08:30"),
        ("0 18 * * 0", "every Sunday at 18:00"),
        ("0 18 * * 7", "every Sunday at 18:00"),
        ("0 10 * * 6,0", "every Saturday and Sunday at 10:00"),
        ("0 7 * * 1,3,5", "every Monday, Wednesday and Friday at 07:00"),
        ("0 9,17 * * 1-5", "every weekday at 09:00 and 17:00"),
        ("5 * * * *", "every hour at :05"),
        ("0 * * * *", "every hour at :00"),
        ("*/15 * * * *", "every 15 min"),
        ("* * * * *", "every minute"),
        ("0 */2 * * *", "every 2 h at :00"),
        ("0 9 1 * *", "every month on day 1 at 09:00"),
        ("30 6 24 12 *", "every year on 24 Dec at 06:30"),
        ("@daily", "every day at 00:00"),
        ("0 9 * * 1#2", "cron: 0 9 * * 1#2"),
        ("*/5 9-17 * * 1-5", "cron: */5 9-17 * * 1-5"),
        ("0 9 1 * 1", "cron: 0 9 1 * 1"),
        ("every 30m", "every 30 min"),
        ("every 2h", "every 2 h"),
        ("every 1h30m", "every 1 h 30 min"),
        ("every 1m", "every minute"),
        ("every 1h", "every hour"),
        ("every 1d", "every day"),
        ("every 3d", "every 3 d"),
        ("2026-12-01T09:00", "once at 2026-12-01 09:00"),
    ],
)
def test_describe_in_words(text: str, words: str) -> None:
    assert parse_schedule(text, tz=BERLIN, now=NOW).describe() == words


def test_describe_shows_times_in_the_schedule_time_zone() -> None:
    # Cron fields are local time already; a one-shot instant is converted.
    assert parse_schedule("0 9 * * *", tz=NEW_YORK, now=NOW).describe() == "every day at 09:00"
    once_utc = "2026-12-01T08:00:00Z"
    assert parse_schedule(once_utc, tz=BERLIN, now=NOW).describe() == "once at 2026-12-01 09:00"
    assert parse_schedule(once_utc, tz=NEW_YORK, now=NOW).describe() == "once at 2026-12-01 03:00"


def test_describe_one_shot_relative_to_now() -> None:
    schedule = parse_schedule("in 12m", tz=BERLIN, now=NOW)
    assert schedule.describe(now=NOW) == "in 12 min"
    assert schedule.describe(now=NOW + timedelta(minutes=10)) == "in 2 min"
    # Once passed it falls back to the absolute time.
    assert schedule.describe(now=NOW + timedelta(hours=1)) == "once at 2026-11-21 15:12"
    # Recurring schedules read the same whatever now is.
    assert parse_schedule("every 30m", now=NOW).describe(now=NOW) == "every 30 min"


# --------------------------------------------------------------------------------------------
# format_countdown
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=4), "in 4 min"),
        (timedelta(minutes=4, seconds=20), "in 4 min"),
        (timedelta(minutes=4, seconds=40), "in 5 min"),
        (timedelta(hours=2, minutes=5), "in 2 h 5 min"),
        (timedelta(hours=2), "in 2 h"),
        (timedelta(minutes=59, seconds=45), "in 1 h"),
        (timedelta(days=3), "in 3 d"),
        (timedelta(days=3, hours=5, minutes=10), "in 3 d 5 h"),
        (timedelta(hours=23, minutes=59, seconds=50), "in 1 d"),
        (timedelta(0), "now"),
        (timedelta(seconds=29), "now"),
        (timedelta(seconds=-29), "now"),
        (timedelta(seconds=31), "in 1 min"),
        (timedelta(minutes=-2), "overdue 2 min"),
        (timedelta(hours=-1, minutes=-3), "overdue 1 h 3 min"),
    ],
)
def test_format_countdown(delta: timedelta, text: str) -> None:
    assert format_countdown(NOW + delta, NOW) == text


def test_format_countdown_across_time_zones() -> None:
    target = datetime(2026, 11, 21, 15, 4, tzinfo=ZoneInfo(BERLIN))  # 14:04 UTC
    assert format_countdown(target, NOW) == "in 4 min"
