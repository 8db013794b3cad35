"""Schedules for cron jobs: parse what a user typed, compute the next run, describe it in words.

Pure logic, no I/O: the scheduler, the ``/cron`` command, the CLI and the agent's cron tool all
go through :func:`parse_schedule`, so every entry point accepts exactly the same language.

Accepted forms (``tz`` is the configured IANA time zone, e.g. ``"Europe/Berlin"``):

* **Cron expression**, 5 fields ``minute hour day-of-month month day-of-week``, e.g.
  ``"0 9 * * 1-5"``, evaluated by croniter on the wall clock of ``tz``. The macros ``@hourly``,
  ``@daily``/``@midnight``, ``@weekly``, ``@monthly`` and ``@yearly``/``@annually`` are
  accepted and stored as their 5-field equivalent.
* **Interval**, ``"every 30m"``, ``"every 2h"``, ``"every 1d"``, ``"every 1h30m"`` (units m/min,
  h/hr/hour, d/day, w/week; spaces allowed). The shortest interval is 1 minute and seconds are
  not accepted at all; the longest is 365 days. Intervals count real elapsed time from an
  anchor, the moment the schedule was created, and the first run is one interval after it.
  The canonical text stores the anchor: ``"every 30m from 2026-11-21T14:00:00Z"``, which the
  user may type as well. Because intervals are elapsed time, ``every 1d`` keeps a fixed UTC
  time and so moves by an hour on the local clock across a DST change; use a cron expression
  for "every day at 09:00 local time".
* **One-shot at a time**, ISO 8601 ``"2026-12-01T09:00"`` (naive means ``tz``) or with an offset
  ``"2026-12-01T09:00+01:00"`` / ``"...Z"``, optionally prefixed by ``"at "`` or ``"once at "``.
  A time that is not in the future is an error, as is a local time that does not exist
  because the clocks skip it; an ambiguous local time (clocks going back) means its first
  occurrence. Canonical text: ISO with seconds and the offset of ``tz``,
  ``"2026-12-01T09:00:00+01:00"``.
* **One-shot relative**, ``"in 45m"``, ``"in 2h"``, ``"in 1d"``, counted from ``now`` and stored
  as the absolute one-shot form above.

A bare duration such as ``"30m"`` is rejected with a question ("every 30m" or "in 30m"?) rather
than guessed, because guessing wrong either repeats a job forever or runs it only once.

Daylight saving time for cron expressions (tested for Europe/Berlin and America/New_York):

* **Spring forward** (the clock skips e.g. 02:00-03:00): a job whose wall-clock time falls in the
  skipped hour runs once, at the moment the clocks jump (03:00 new time), like Vixie cron. A
  daily ``30 2 * * *`` job therefore runs at 03:00 on that day and at 02:30 again the next day.
* **Fall back** (e.g. 02:00-03:00 happens twice): a job runs at most once per wall-clock time,
  at the first occurrence, so a daily ``30 2 * * *`` job does not run twice. Only jobs whose
  hour field is ``*`` (hourly or more often) run in both passes of the repeated hour, because
  they measure time passing and skipping the second pass would leave a two-hour gap.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from hermes_gateway.text import minutes_in_words

__all__ = [
    "ACCEPTED_FORMS",
    "CronSchedule",
    "IntervalSchedule",
    "OneShotSchedule",
    "Schedule",
    "ScheduleError",
    "format_countdown",
    "parse_schedule",
]

MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=365)

ACCEPTED_FORMS = (
    'Accepted schedules: a 5-field cron expression such as "0 9 * * 1-5" '
    '(minute hour day month weekday); an interval such as "every 30m", "every 2h", '
    '"every 1d" or "every 1h30m"; a one-shot delay such as "in 45m", "in 2h" or "in 1d"; '
    'or a one-shot time such as "2026-12-01T09:00" (local time) or "2026-12-01T09:00+01:00".'
)

_CRON_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_CRON_FIELD_RANGES = ("0-59", "0-23", "1-31", "1-12 or jan-dec", "0-7 or sun-sat")
_CRON_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_UNIT_MINUTES = {
    "m": 1,
    "min": 1,
    "mins": 1,
    "minute": 1,
    "minutes": 1,
    "h": 60,
    "hr": 60,
    "hrs": 60,
    "hour": 60,
    "hours": 60,
    "d": 1440,
    "day": 1440,
    "days": 1440,
    "w": 10080,
    "wk": 10080,
    "week": 10080,
    "weeks": 10080,
}
_SECOND_UNITS = {"s", "sec", "secs", "second", "seconds"}
_DURATION_PART = re.compile(r"(\d+)\s*([a-z]+)")
_DURATION = re.compile(r"^(?:\d+\s*[a-z]+\s*)+$")
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
_ISO_HAS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", re.IGNORECASE)

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {str(i + 1): name for i, name in enumerate(_MONTH_NAMES)} | {
    name.lower(): name for name in _MONTH_NAMES
}
_DAY_ABBR = {name[:3].lower(): i for i, name in enumerate(_DAY_NAMES)}


class ScheduleError(ValueError):
    """A schedule the user typed cannot be used; the message says why and what would work."""


# --------------------------------------------------------------------------------------------
# Schedule classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """Common interface of the three schedule kinds.

    Attributes:
        expr: Canonical text; ``parse_schedule(expr, tz=tz, allow_past=True)`` returns an equal
            schedule, so this is what the database stores.
        tz: IANA name of the time zone cron fields are read in and describe() shows times in.
    """

    kind: ClassVar[Literal["cron", "interval", "once"]]
    expr: str
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        """The ZoneInfo for ``tz`` (zoneinfo caches instances, so this is cheap)."""
        return ZoneInfo(self.tz)

    @property
    def is_one_shot(self) -> bool:
        """True when the schedule fires once and is then done."""
        return self.kind == "once"

    def next_run(self, after: datetime) -> datetime | None:
        """The first run strictly after ``after`` (aware), as an aware UTC datetime.

        Returns None once a one-shot has passed. Strictly-after lets the scheduler pass the
        time of the run it just made and get the following one.
        """
        raise NotImplementedError

    def describe(self, now: datetime | None = None) -> str:
        """The schedule in words for lists and confirmations, e.g. "every weekday at 09:00"."""
        raise NotImplementedError


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A 5-field cron expression evaluated on the wall clock of ``tz``."""

    kind: ClassVar[Literal["cron", "interval", "once"]] = "cron"

    def next_run(self, after: datetime) -> datetime | None:
        after_utc = _to_utc(after, "after")
        return _cron_next(self.expr, self.zone, after_utc)

    def describe(self, now: datetime | None = None) -> str:
        return _describe_cron(self.expr)


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """Every ``every`` of elapsed time, counted from ``anchor`` (the creation time).

    Attributes:
        every: The period, a whole number of minutes between 1 minute and 365 days.
        anchor: Aware UTC datetime the runs count from; runs are at ``anchor + k * every`` for
            k >= 1, so the first run is one period after creation.
    """

    kind: ClassVar[Literal["cron", "interval", "once"]] = "interval"
    every: timedelta
    anchor: datetime

    def next_run(self, after: datetime) -> datetime | None:
        after_utc = _to_utc(after, "after")
        periods = max(1, (after_utc - self.anchor) // self.every + 1)
        return self.anchor + periods * self.every

    def describe(self, now: datetime | None = None) -> str:
        minutes = int(self.every.total_seconds() // 60)
        for unit_minutes, word in ((1440, "day"), (60, "hour"), (1, "minute")):
            if minutes == unit_minutes:
                return f"every {word}"
        return f"every {minutes_in_words(minutes)}"


@dataclass(frozen=True)
class OneShotSchedule(Schedule):
    """A single run at ``at`` (aware UTC)."""

    kind: ClassVar[Literal["cron", "interval", "once"]] = "once"
    at: datetime

    def next_run(self, after: datetime) -> datetime | None:
        after_utc = _to_utc(after, "after")
        return self.at if self.at > after_utc else None

    def describe(self, now: datetime | None = None) -> str:
        """A countdown ("in 12 min") before the run when ``now`` is given, else the local time.

        Users deciding whether to cancel a job care how soon it fires; once it has passed (or
        without ``now``) the absolute time "once at 2026-12-01 09:00" is the useful answer.
        """
        if now is not None and self.at > _to_utc(now, "now"):
            return format_countdown(self.at, now)
        return f"once at {self.at.astimezone(self.zone):%Y-%m-%d %H:%M}"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def parse_schedule(
    text: str,
    *,
    tz: str | ZoneInfo = "UTC",
    now: datetime | None = None,
    allow_past: bool = False,
) -> Schedule:
    """Parse a schedule typed by a user (or a stored canonical ``expr``).

    Args:
        text: The schedule, in any form listed in the module docstring.
        tz: IANA time zone for cron fields and naive ISO times.
        now: Aware "current time"; anchors "in 45m" and a new interval, and is what a one-shot
            must lie after. Defaults to the wall clock; tests always pass it.
        allow_past: Accept a one-shot time that has passed. For reloading stored schedules,
            whose ``next_run`` then simply returns None; users never get this.

    Raises:
        ScheduleError: The text is not a usable schedule; the message explains the fix.
    """
    zone = _zone(tz)
    tz_name = str(zone.key)
    now_utc = _to_utc(now, "now") if now is not None else datetime.now(UTC)
    raw = " ".join(str(text).split())
    if not raw:
        raise ScheduleError(f"The schedule is empty. {ACCEPTED_FORMS}")
    lower = raw.lower()

    if lower.startswith("every ") or lower == "every":
        return _parse_interval(raw, tz_name, zone, now_utc)
    if lower.startswith("in ") or lower == "in":
        return _parse_relative(raw, tz_name, zone, now_utc)
    if _is_bare_duration(lower):
        raise ScheduleError(
            f'"{raw}" is ambiguous: did you mean "every {raw}" (repeat every {raw}) '
            f'or "in {raw}" (run once, {raw} from now)?'
        )
    if lower in _CRON_MACROS:
        return _parse_cron(_CRON_MACROS[lower], tz_name, zone, now_utc)
    if lower.startswith("@"):
        raise ScheduleError(
            f'Unknown cron macro "{raw}"; use one of {", ".join(sorted(_CRON_MACROS))}. '
            f"{ACCEPTED_FORMS}"
        )
    iso = re.sub(r"^(?:once\s+)?(?:at\s+)?", "", raw, flags=re.IGNORECASE)
    if _ISO_START.match(iso):
        at = _parse_iso(iso, zone)
        return _one_shot(at, tz_name, zone, now_utc, allow_past, shown=raw)
    fields = raw.split()
    if len(fields) == 5:
        return _parse_cron(raw, tz_name, zone, now_utc)
    if len(fields) in (6, 7) and all(re.fullmatch(r"[\w*/,\-?#]+", f) for f in fields):
        raise ScheduleError(
            f'"{raw}" has {len(fields)} fields; cron expressions need exactly 5 '
            "(minute hour day-of-month month day-of-week), seconds and years are not supported."
        )
    raise ScheduleError(f'Cannot understand the schedule "{raw}". {ACCEPTED_FORMS}')


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        if not tz.key:
            raise ScheduleError("The time zone must be a named IANA zone such as Europe/Berlin.")
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f'Unknown time zone "{tz}"; use an IANA name such as "Europe/Berlin" or "UTC".'
        ) from exc


def _to_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


def _is_bare_duration(text: str) -> bool:
    """True for "30m", "2 h", "90s": a duration with neither "every" nor "in" in front."""
    if not _DURATION.match(text):
        return False
    units = {unit for _, unit in _DURATION_PART.findall(text)}
    return units <= _UNIT_MINUTES.keys() | _SECOND_UNITS


def _parse_duration(text: str, raw: str, what: str) -> timedelta:
    """Turn "1h30m" / "90 min" / "2 hours" into a timedelta of whole minutes within limits."""
    example = "every 1m" if what == "interval" else "in 1m"
    compact = text.strip().lower()
    if not compact or not _DURATION.match(compact):
        raise ScheduleError(
            f'Cannot read the duration in "{raw}"; write it like "30m", "2h", "1d" or "1h30m".'
        )
    minutes = 0
    for number, unit in _DURATION_PART.findall(compact):
        if unit in _SECOND_UNITS:
            raise ScheduleError(
                f'"{raw}": seconds are not supported; the shortest {what} is 1 minute '
                f'(e.g. "{example}").'
            )
        if unit not in _UNIT_MINUTES:
            raise ScheduleError(
                f'"{raw}": unknown unit "{unit}"; use m (minutes), h (hours), d (days) '
                "or w (weeks)."
            )
        minutes += int(number) * _UNIT_MINUTES[unit]
        if minutes > MAX_INTERVAL // MIN_INTERVAL:
            break
    if minutes < 1:
        raise ScheduleError(f'"{raw}": the {what} must be at least 1 minute.')
    if minutes > MAX_INTERVAL // MIN_INTERVAL:
        raise ScheduleError(f'"{raw}": the {what} can be at most 365 days.')
    return timedelta(minutes=minutes)


def _duration_text(delta: timedelta) -> str:
    """Canonical compact duration, largest units first: 90 min -> "1h30m"."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return "".join(parts)


def _parse_interval(raw: str, tz_name: str, zone: ZoneInfo, now_utc: datetime) -> Schedule:
    body = raw[len("every") :].strip()
    duration_text, *anchor_part = re.split(r"\s+from\b\s*", body, maxsplit=1, flags=re.I)
    every = _parse_duration(duration_text, raw, "interval")
    if anchor_part:
        anchor_text = anchor_part[0].strip()
        if not _ISO_START.match(anchor_text):
            raise ScheduleError(
                f'"{raw}": after "from" give the time the interval counts from, as in '
                '"every 30m from 2026-11-21T14:00:00Z".'
            )
        anchor = _parse_iso(anchor_text, zone)
    else:
        anchor = now_utc
    anchor = anchor.replace(microsecond=0)
    expr = f"every {_duration_text(every)} from {anchor:%Y-%m-%dT%H:%M:%S}Z"
    return IntervalSchedule(expr=expr, tz=tz_name, every=every, anchor=anchor)


def _parse_relative(raw: str, tz_name: str, zone: ZoneInfo, now_utc: datetime) -> Schedule:
    delay = _parse_duration(raw[len("in") :], raw, "delay")
    at = (now_utc + delay).replace(microsecond=0)
    return _one_shot(at, tz_name, zone, now_utc, allow_past=False, shown=raw)


def _parse_iso(text: str, zone: ZoneInfo) -> datetime:
    """Parse an ISO date-time; naive means wall clock in ``zone``. Returns aware UTC."""
    if not _ISO_HAS_TIME.match(text):
        raise ScheduleError(
            f'"{text}" has no time of day; write it like "2026-12-01T09:00" '
            'or "2026-12-01T09:00+01:00".'
        )
    try:
        value = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise ScheduleError(
            f'"{text}" is not a valid date and time; write it like "2026-12-01T09:00" '
            'or "2026-12-01T09:00+01:00".'
        ) from exc
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    local = value.replace(tzinfo=zone, fold=0)
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != value:
        raise ScheduleError(
            f'"{text}" does not exist in {zone.key}: the clocks skip that time when daylight '
            "saving starts. Pick a time outside the skipped hour."
        )
    return utc


def _one_shot(
    at: datetime, tz_name: str, zone: ZoneInfo, now_utc: datetime, allow_past: bool, shown: str
) -> Schedule:
    at = at.replace(microsecond=0)
    if at <= now_utc and not allow_past:
        now_local = now_utc.astimezone(zone)
        raise ScheduleError(
            f'"{shown}" is in the past (it is now {now_local:%Y-%m-%d %H:%M} {zone.key}); '
            "a one-shot time must be in the future."
        )
    expr = at.astimezone(zone).isoformat(timespec="seconds")
    return OneShotSchedule(expr=expr, tz=tz_name, at=at)


def _parse_cron(raw: str, tz_name: str, zone: ZoneInfo, now_utc: datetime) -> Schedule:
    expr = raw.lower()
    try:
        croniter(expr)
    except Exception as exc:  # CroniterError, and plain ValueError/KeyError for some inputs
        raise ScheduleError(_cron_field_problem(raw)) from exc
    schedule = CronSchedule(expr=expr, tz=tz_name)
    try:
        _cron_next(expr, zone, now_utc)
    except CroniterBadDateError as exc:
        raise ScheduleError(
            f'The cron expression "{raw}" never matches a real date (e.g. February 30).'
        ) from exc
    return schedule


def _cron_field_problem(raw: str) -> str:
    """Name the first field croniter rejects, by testing each against an all-"*" expression."""
    for index, field in enumerate(raw.split()):
        probe = ["*"] * 5
        probe[index] = field.lower()
        try:
            croniter(" ".join(probe))
        except Exception:
            if field.lower().startswith("h"):
                hint = 'hashed "H" values are not supported'
            else:
                hint = f"allowed values are {_CRON_FIELD_RANGES[index]}, with , - / and *"
            return (
                f'Bad cron expression "{raw}": the {_CRON_FIELD_NAMES[index]} field '
                f'"{field}" is not valid ({hint}).'
            )
    return f'Bad cron expression "{raw}". {ACCEPTED_FORMS}'


# --------------------------------------------------------------------------------------------
# Cron evaluation across DST
# --------------------------------------------------------------------------------------------


def _cron_next(expr: str, zone: ZoneInfo, after_utc: datetime) -> datetime:
    """Next instant strictly after ``after_utc`` at which the cron expression fires in ``zone``.

    croniter walks naive wall-clock times (pure calendar arithmetic, no DST surprises); each
    wall time is then mapped to real instants by :func:`_instants`, which applies the DST
    policy. The earliest instant of successive wall times never decreases, so the walk stops
    as soon as a wall time's earliest instant is past the best candidate.
    """
    hour_wildcard = expr.split()[1] in ("*", "*/1")
    # Start early enough that no skipped wall time could still have an instant after
    # ``after_utc``: wall time minus the smallest UTC offset in use around that moment.
    offsets = [
        (after_utc + timedelta(hours=h)).astimezone(zone).utcoffset() or timedelta(0)
        for h in (-3, 0, 3)
    ]
    start_wall = after_utc.replace(tzinfo=None) + min(offsets)
    walker = croniter(expr, start_wall)
    best: datetime | None = None
    for _ in range(10_000):
        wall = walker.get_next(datetime)
        candidates = _instants(wall, zone, hour_wildcard)
        if best is not None and candidates[0] > best:
            break
        for instant in candidates:
            if instant > after_utc and (best is None or instant < best):
                best = instant
    if best is None:  # pragma: no cover - only with a pathological expression
        raise CroniterBadDateError("failed to find next date")
    return best


def _instants(wall: datetime, zone: ZoneInfo, hour_wildcard: bool) -> list[datetime]:
    """The real UTC instants, ascending, at which a job due at naive ``wall`` in ``zone`` runs."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        # Ambiguous: the wall time happens twice as the clocks go back.
        return [first, second] if hour_wildcard else [first]
    # Skipped: run at the moment the clocks jump over it. For a skipped wall time, fold=1
    # maps before the jump and fold=0 after it; bisect for the first instant on the new offset.
    new_offset = first.astimezone(zone).utcoffset()
    low, high = second, first
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == new_offset:
            high = mid
        else:
            low = mid
    return [high]


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------


def _describe_cron(expr: str) -> str:
    """Common cron patterns in words, "cron: <expr>" for the rest."""
    fallback = f"cron: {expr}"
    minute, hour, dom, month, dow = ("*" if f == "?" else f for f in expr.split())
    if (dom, month, dow) == ("*", "*", "*"):
        if hour == "*":
            if minute in ("*", "*/1"):
                return "every minute"
            step = re.fullmatch(r"\*/(\d+)", minute)
            if step:
                return f"every {int(step.group(1))} min"
            if minute.isdigit():
                return f"every hour at :{int(minute):02d}"
            return fallback
        hour_step = re.fullmatch(r"\*/(\d+)", hour)
        if hour_step and minute.isdigit():
            return f"every {int(hour_step.group(1))} h at :{int(minute):02d}"
    times = _times_of_day(minute, hour)
    if times is None:
        return fallback
    at = f"at {_join_words(times)}"
    if month != "*":
        if dom.isdigit() and dow == "*" and month in _MONTHS:
            return f"every year on {int(dom)} {_MONTHS[month]} {at}"
        return fallback
    if dom == "*":
        days = _weekdays(dow)
        if days is None:
            return fallback
        if len(days) == 7:
            return f"every day {at}"
        if days == {1, 2, 3, 4, 5}:
            return f"every weekday {at}"
        ordered = [_DAY_NAMES[d] for d in (1, 2, 3, 4, 5, 6, 0) if d in days]
        return f"every {_join_words(ordered)} {at}"
    if dow == "*" and dom.isdigit():
        return f"every month on day {int(dom)} {at}"
    return fallback


def _times_of_day(minute: str, hour: str) -> list[str] | None:
    """Expand simple minute/hour fields (numbers, lists, ranges) into "HH:MM" labels."""
    minutes = _expand(minute, 0, 59)
    hours = _expand(hour, 0, 23)
    if minutes is None or hours is None or len(minutes) * len(hours) > 6:
        return None
    return [f"{h:02d}:{m:02d}" for h in hours for m in minutes]


def _expand(field: str, low: int, high: int) -> list[int] | None:
    """Numbers, comma lists and ascending ranges only; steps and wildcards give None."""
    values: set[int] = set()
    for part in field.split(","):
        bounds = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not bounds:
            return None
        first = int(bounds.group(1))
        last = int(bounds.group(2)) if bounds.group(2) else first
        if not low <= first <= last <= high:
            return None
        values.update(range(first, last + 1))
    return sorted(values)


def _weekdays(field: str) -> set[int] | None:
    """Day-of-week field as a set of 0-6 (Sunday = 0), names allowed; None if too complex."""
    if field in ("*", "?"):
        return set(range(7))
    days: set[int] = set()
    for part in field.split(","):
        bounds = part.split("-")
        if len(bounds) > 2:
            return None
        numbers = []
        for bound in bounds:
            if bound.isdigit() and int(bound) <= 7:
                numbers.append(int(bound))
            elif bound in _DAY_ABBR:
                numbers.append(_DAY_ABBR[bound])
            else:
                return None
        first, last = numbers[0], numbers[-1]
        if last == 0 and first > 0:  # "mon-sun": Sunday written as 0 at the end
            last = 7
        if first > last:
            return None
        days.update(d % 7 for d in range(first, last + 1))
    return days


def _join_words(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} and {items[-1]}"


def format_countdown(target: datetime, now: datetime) -> str:
    """Time until ``target`` for a status column: "in 4 min", "in 2 h 5 min", "now", "overdue 2 min".

    Rounded to the nearest minute (under 30 s either way is "now"); from one day on the
    minutes are dropped ("in 3 d", "in 1 d 4 h") because that precision is noise there.
    """
    seconds = (target - now).total_seconds()
    minutes = math.floor(abs(seconds) / 60 + 0.5)
    if minutes == 0:
        return "now"
    if minutes >= 1440:
        minutes -= minutes % 60
    words = minutes_in_words(minutes)
    return f"in {words}" if seconds > 0 else f"overdue {words}"
