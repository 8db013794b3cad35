"""Cron jobs and their run history in the gateway's SQLite database.

:class:`CronStore` keeps two tables (migration 4 in ``hermes_gateway/store/migrations.py``):
``cron_jobs`` and ``cron_runs``. It works over a shared :class:`SessionStore` (inside the
gateway) or opens its own (the ``hermes cron`` CLI, while a gateway runs on the same file).

The guarantees the scheduler relies on are made here, each in ONE write transaction
(``BEGIN IMMEDIATE``, so processes take turns):

* **Claim before run.** :meth:`CronStore.claim_due` finds due jobs, advances ``next_run`` past
  now, takes the job's lease and inserts a ``running`` run record, all in one commit, before
  any agent work starts. A process killed after that commit never runs the slot again (the
  job is no longer due), and a second process on the same file sees the job as not due (or
  leased) and leaves it alone.
* **Lease.** ``lease_owner``/``lease_until`` lock a job while it runs, whatever started it
  (schedule, "run now", two gateways). The owner renews it; a crashed owner's lease expires,
  and its ``running`` record is then marked ``interrupted`` by :meth:`CronStore.recover_stale`
  instead of being re-run: at most once, never twice.
* **Missed runs.** A slot that is late by more than the grace window is recorded as a
  ``missed`` run and skipped; within the window it runs once, however many slots were missed.
"""

from __future__ import annotations

import builtins  # `list` is shadowed by CronStore.list in annotations below it
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from hermes_cron.schedules import Schedule, ScheduleError, parse_schedule
from hermes_gateway.models import LOCAL_PLATFORM, SessionSource
from hermes_gateway.store import SessionStore

__all__ = [
    "CRON_PLATFORM",
    "Claim",
    "CronError",
    "CronStore",
    "FinishResult",
    "Job",
    "RunRecord",
    "RunStatus",
    "Scope",
    "cron_source",
    "origin_json",
]

CRON_PLATFORM = "cron"
"""The platform name of cron sessions; session keys are ``cron:dm:<job_id>``."""

RunStatus = Literal["running", "ok", "error", "interrupted", "missed"]
LivenessCheck = Callable[[str], Literal["alive", "dead", "unknown"]]
"""Tells whether a lease owner's process still runs (see hermes_cron.ticker.owner_liveness)."""
Trigger = Literal["schedule", "manual", "missed"]

_JOB_COLS = (
    "id, name, prompt, schedule, tz, deliver, origin, enabled, repeat, runs, next_run, "
    "run_requested_at, last_run, last_status, last_error, last_delivery_status, "
    "last_delivery_error, last_output, lease_owner, lease_until, created_at, updated_at"
)
_RUN_COLS = (
    "id, job_id, trigger, scheduled_for, started_at, finished_at, status, error, "
    "delivery_status, delivery_error, output_path, owner"
)
_SQL_JOB = f"SELECT {_JOB_COLS} FROM cron_jobs WHERE id = ?"
_SQL_JOBS = f"SELECT {_JOB_COLS} FROM cron_jobs ORDER BY created_at, id"
_SQL_DUE = (
    f"SELECT {_JOB_COLS} FROM cron_jobs WHERE (enabled = 1 AND next_run IS NOT NULL "
    "AND next_run <= ?) OR run_requested_at IS NOT NULL ORDER BY next_run, id"
)
_SQL_INSERT_RUN = (
    "INSERT INTO cron_runs (job_id, trigger, scheduled_for, started_at, status, error, owner, "
    "finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQL_RUN = f"SELECT {_RUN_COLS} FROM cron_runs WHERE id = ?"

#: Run records kept per job; older ones are deleted when a run finishes.
RUN_HISTORY_KEEP = 200


class CronError(ValueError):
    """A cron request cannot be done; the message is meant for the person who asked."""


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _source_to_json(source: SessionSource | None) -> str | None:
    if source is None:
        return None
    data = {
        "platform": source.platform,
        "chat_id": source.chat_id,
        "chat_type": source.chat_type,
        "thread_id": source.thread_id,
        "user_id": source.user_id,
        "user_name": source.user_name,
        "chat_name": source.chat_name,
    }
    return json.dumps({k: v for k, v in data.items() if v is not None}, ensure_ascii=False)


def origin_json(source: SessionSource | None) -> str | None:
    """How a job's origin is stored, for writers outside this module (the importer)."""
    return _source_to_json(source)


def _source_from_json(text: str | None) -> SessionSource | None:
    if not text:
        return None
    try:
        data = json.loads(text)
        return SessionSource(**data)
    except (ValueError, TypeError):
        return None


@dataclass
class Job:
    """One scheduled job as stored (times are aware UTC datetimes).

    ``last_status`` is the task's result and ``last_delivery_status`` the delivery's, kept
    apart so a run that worked but could not be delivered says exactly that.
    """

    id: str
    name: str
    prompt: str
    schedule: str
    tz: str
    created_at: datetime
    updated_at: datetime
    deliver: str = "local"
    origin: SessionSource | None = None
    enabled: bool = True
    repeat: int | None = None
    runs: int = 0
    next_run: datetime | None = None
    run_requested_at: datetime | None = None
    last_run: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_delivery_status: str | None = None
    last_delivery_error: str | None = None
    last_output: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    _parsed: Schedule | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Job:
        return cls(
            id=row[0],
            name=row[1],
            prompt=row[2],
            schedule=row[3],
            tz=row[4],
            deliver=row[5],
            origin=_source_from_json(row[6]),
            enabled=bool(row[7]),
            repeat=row[8],
            runs=row[9],
            next_run=_dt(row[10]),
            run_requested_at=_dt(row[11]),
            last_run=_dt(row[12]),
            last_status=row[13],
            last_error=row[14],
            last_delivery_status=row[15],
            last_delivery_error=row[16],
            last_output=row[17],
            lease_owner=row[18],
            lease_until=_dt(row[19]),
            created_at=_dt(row[20]) or datetime.now(UTC),
            updated_at=_dt(row[21]) or datetime.now(UTC),
        )

    @property
    def parsed(self) -> Schedule:
        """The schedule object (stored text re-parsed once; past one-shots allowed)."""
        if self._parsed is None:
            self._parsed = parse_schedule(self.schedule, tz=self.tz, allow_past=True)
        return self._parsed

    @property
    def one_shot(self) -> bool:
        return self.parsed.is_one_shot

    @property
    def session_key(self) -> str:
        return cron_source(self).session_key

    @property
    def owner(self) -> str | None:
        """The chat (session key) the job belongs to; None: the operator's.

        A job belongs to the chat it was made from (its ``origin``). Jobs made at the
        terminal, by the CLI, or stored without an origin are the operator's.
        """
        return Scope.of(self.origin).chat

    def describe(self, now: datetime | None = None) -> str:
        """The schedule in words ("every weekday at 09:00", "in 12 min")."""
        try:
            return self.parsed.describe(now)
        except ScheduleError:
            return self.schedule

    def is_running(self, now: datetime, liveness: LivenessCheck | None = None) -> bool:
        """Whether some process holds the job's lease right now.

        With ``liveness``, an owner known to be alive holds it even past ``lease_until`` (a
        stalled but living process must not have its job run twice), and one known to be dead
        holds nothing.
        """
        if self.lease_owner is None:
            return False
        state = liveness(self.lease_owner) if liveness is not None else "unknown"
        if state != "unknown":
            return state == "alive"
        return self.lease_until is not None and self.lease_until > now

    @property
    def state(self) -> str:
        """``active``, ``paused`` or ``done`` (a finished job kept to show its failure)."""
        if self.enabled:
            return "active"
        return "done" if self.next_run is None and self.last_status else "paused"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose jobs a request may see and act on: the operator's (all of them) or one chat's.

    Remote users are not trusted with each other's jobs: from a chat, ``/cron`` and the
    ``cronjob`` tool see only that chat's jobs, and a new job may only deliver back to it.
    The terminal and ``hermes cron`` (the operator) see and do everything.
    """

    chat: str | None = None
    """The chat's session key; None for the operator."""

    @property
    def operator(self) -> bool:
        return self.chat is None

    def sees(self, job: Job) -> bool:
        return self.chat is None or job.owner == self.chat

    @classmethod
    def of(cls, source: SessionSource | None, *, operator: bool = False) -> Scope:
        """The scope of a request from ``source`` (``operator``: the person at the TUI)."""
        if operator or source is None or source.platform in (LOCAL_PLATFORM, CRON_PLATFORM):
            return OPERATOR
        return cls(source.session_key)


OPERATOR = Scope()


def cron_source(job: Job | str, name: str | None = None) -> SessionSource:
    """The chat a job's runs live in: platform ``cron``, one session per job."""
    job_id = job if isinstance(job, str) else job.id
    label = name if name is not None else (job.name if isinstance(job, Job) else job_id)
    return SessionSource(
        platform=CRON_PLATFORM,
        chat_id=job_id,
        chat_type="dm",
        user_id="cron",
        user_name="cron",
        chat_name=f"cron: {label}",
    )


@dataclass
class RunRecord:
    """One run of a job (or one missed slot)."""

    id: int
    job_id: str
    trigger: str
    scheduled_for: datetime | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None = None
    delivery_status: str | None = None
    delivery_error: str | None = None
    output_path: str | None = None
    owner: str | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRecord:
        return cls(
            id=row[0],
            job_id=row[1],
            trigger=row[2],
            scheduled_for=_dt(row[3]),
            started_at=_dt(row[4]) or datetime.now(UTC),
            finished_at=_dt(row[5]),
            status=row[6],
            error=row[7],
            delivery_status=row[8],
            delivery_error=row[9],
            output_path=row[10],
            owner=row[11],
        )


@dataclass
class Claim:
    """A job this process may now run (its lease is held and its next run advanced)."""

    job: Job
    run: RunRecord


@dataclass
class FinishResult:
    """What :meth:`CronStore.finish_run` did to the job."""

    job: Job | None
    """The job afterwards; None if it was removed (or deleted during the run)."""
    removed: bool = False


# --------------------------------------------------------------------------------------------
# Transactions (run on the store's worker thread, inside BEGIN IMMEDIATE ... COMMIT)


def _get_job(conn: sqlite3.Connection, job_id: str) -> Job | None:
    row = conn.execute(_SQL_JOB, (job_id,)).fetchone()
    return None if row is None else Job.from_row(row)


def _insert_run(
    conn: sqlite3.Connection,
    job_id: str,
    trigger: str,
    scheduled_for: float | None,
    now: float,
    status: str,
    owner: str | None,
    error: str | None = None,
) -> RunRecord:
    finished = None if status == "running" else now
    cur = conn.execute(
        _SQL_INSERT_RUN, (job_id, trigger, scheduled_for, now, status, error, owner, finished)
    )
    row = conn.execute(_SQL_RUN, (cur.lastrowid,)).fetchone()
    return RunRecord.from_row(row)


def _tx_add(conn: sqlite3.Connection, values: dict[str, Any]) -> Job:
    while True:
        job_id = secrets.token_hex(4)
        if conn.execute("SELECT 1 FROM cron_jobs WHERE id = ?", (job_id,)).fetchone() is None:
            break
    values = {"id": job_id, **values}
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO cron_jobs ({cols}) VALUES ({marks})", tuple(values.values()))
    job = _get_job(conn, job_id)
    assert job is not None
    return job


def _tx_update(conn: sqlite3.Connection, job_id: str, values: dict[str, Any]) -> Job | None:
    sets = ", ".join(f"{k} = ?" for k in values)
    conn.execute(f"UPDATE cron_jobs SET {sets} WHERE id = ?", (*values.values(), job_id))
    return _get_job(conn, job_id)


def _tx_resume(conn: sqlite3.Connection, job_id: str, now: datetime) -> Job:
    job = _get_job(conn, job_id)
    if job is None:
        raise CronError(f"There is no job {job_id}.")
    next_run = job.parsed.next_run(now)
    if next_run is None:
        raise CronError(
            f"“{job.name}” was a one-shot whose time has passed; run it with /cron run {job.id} "
            "or add a new job."
        )
    values: dict[str, Any] = {"enabled": 1, "next_run": _ts(next_run), "updated_at": _ts(now)}
    if job.repeat is not None and job.runs >= job.repeat:
        values["runs"] = 0
    updated = _tx_update(conn, job_id, values)
    assert updated is not None
    return updated


def _tx_claim_due(
    conn: sqlite3.Connection,
    now: datetime,
    grace_s: float,
    owner: str,
    lease_s: float,
    liveness: LivenessCheck | None,
) -> tuple[list[Claim], list[tuple[Job, RunRecord]]]:
    """Claim every due job not leased by anyone; record missed slots. See the module doc."""
    now_ts = now.timestamp()
    claims: list[Claim] = []
    missed: list[tuple[Job, RunRecord]] = []
    for row in conn.execute(_SQL_DUE, (now_ts,)).fetchall():
        job = Job.from_row(row)
        if job.is_running(now, liveness):
            continue  # another run holds it; a due slot waits for the lease to end
        due = job.enabled and job.next_run is not None and job.next_run <= now
        manual = job.run_requested_at is not None
        values: dict[str, Any] = {"updated_at": now_ts}
        scheduled_for = _ts(job.next_run) if due else None
        if due:
            try:
                following = job.parsed.next_run(now)
            except ScheduleError as exc:  # a stored schedule this version cannot read
                _tx_update(conn, job.id, {"enabled": 0, "last_error": str(exc), **values})
                continue
            values["next_run"] = _ts(following)
            if following is None:
                values["enabled"] = 0
            late = (now - job.next_run).total_seconds() if job.next_run else 0.0
            if late > grace_s and not manual:
                error = (
                    f"missed the run due {job.next_run:%Y-%m-%d %H:%M} UTC by "
                    f"{_late_words(late)} (nothing was running then)"
                )
                run = _insert_run(
                    conn, job.id, "missed", scheduled_for, now_ts, "missed", None, error
                )
                values.update(last_status="missed", last_error=error)
                updated = _tx_update(conn, job.id, values)
                missed.append((updated or job, run))
                continue
        run = _insert_run(
            conn, job.id, "schedule" if due else "manual", scheduled_for, now_ts, "running", owner
        )
        values.update(
            run_requested_at=None,
            lease_owner=owner,
            lease_until=now_ts + lease_s,
            last_run=now_ts,
            last_status="running",
            last_error=None,
        )
        updated = _tx_update(conn, job.id, values)
        assert updated is not None
        claims.append(Claim(updated, run))
    return claims, missed


def _tx_claim_now(
    conn: sqlite3.Connection,
    job_id: str,
    now: datetime,
    owner: str,
    lease_s: float,
    liveness: LivenessCheck | None,
) -> Claim:
    job = _get_job(conn, job_id)
    if job is None:
        raise CronError(f"There is no job {job_id}.")
    if job.is_running(now, liveness):
        raise CronError(f"“{job.name}” is already running.")
    now_ts = now.timestamp()
    run = _insert_run(conn, job.id, "manual", None, now_ts, "running", owner)
    updated = _tx_update(
        conn,
        job.id,
        {
            "run_requested_at": None,
            "lease_owner": owner,
            "lease_until": now_ts + lease_s,
            "last_run": now_ts,
            "last_status": "running",
            "last_error": None,
            "updated_at": now_ts,
        },
    )
    assert updated is not None
    return Claim(updated, run)


def _tx_finish(
    conn: sqlite3.Connection,
    job_id: str,
    run_id: int,
    owner: str,
    now: datetime,
    status: str,
    error: str | None,
    delivery_status: str | None,
    delivery_error: str | None,
    output_path: str | None,
) -> FinishResult:
    now_ts = now.timestamp()
    conn.execute(
        "UPDATE cron_runs SET finished_at = ?, status = ?, error = ?, delivery_status = ?, "
        "delivery_error = ?, output_path = ? WHERE id = ?",
        (now_ts, status, error, delivery_status, delivery_error, output_path, run_id),
    )
    job = _get_job(conn, job_id)
    if job is None:
        return FinishResult(None, removed=True)
    counted = status in ("ok", "error")
    runs = job.runs + (1 if counted else 0)
    exhausted = (job.repeat is not None and runs >= job.repeat) or (
        job.one_shot and (counted or job.next_run is None)
    )
    delivered = delivery_status in (None, "ok", "silent", "local")
    if exhausted and status == "ok" and delivered:
        conn.execute("DELETE FROM cron_jobs WHERE id = ?", (job_id,))
        return FinishResult(None, removed=True)
    values: dict[str, Any] = {
        "runs": runs,
        "last_status": status,
        "last_error": error,
        "last_delivery_status": delivery_status,
        "last_delivery_error": delivery_error,
        "updated_at": now_ts,
    }
    if output_path:
        values["last_output"] = output_path
    if job.lease_owner == owner:
        values.update(lease_owner=None, lease_until=None)
    if exhausted:  # kept, stopped, so its failure stays visible
        values.update(enabled=0, next_run=None)
    updated = _tx_update(conn, job_id, values)
    conn.execute(
        "DELETE FROM cron_runs WHERE job_id = ? AND id <= "
        "(SELECT id FROM cron_runs WHERE job_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (job_id, job_id, RUN_HISTORY_KEEP),
    )
    return FinishResult(updated)


def _tx_recover(
    conn: sqlite3.Connection, now: datetime, owner: str, liveness: LivenessCheck
) -> list[RunRecord]:
    """Mark ``running`` records of crashed owners ``interrupted`` and free their leases.

    A run is stale when its owner is known dead, or unknown (another machine) and its lease
    has run out.
    """
    now_ts = now.timestamp()
    rows = conn.execute(
        "SELECT r.id, r.job_id, r.owner, j.lease_owner, j.lease_until FROM cron_runs r "
        "LEFT JOIN cron_jobs j ON j.id = r.job_id WHERE r.status = 'running'"
    ).fetchall()
    recovered: list[RunRecord] = []
    error = "interrupted: the gateway running it stopped before it finished"
    for run_id, job_id, run_owner, lease_owner, lease_until in rows:
        if run_owner == owner:
            continue
        state = liveness(run_owner) if run_owner else "dead"
        lease_live = lease_owner == run_owner and lease_until is not None and lease_until > now_ts
        if state == "alive" or (state == "unknown" and lease_live):
            continue
        conn.execute(
            "UPDATE cron_runs SET status = 'interrupted', error = ?, finished_at = ? WHERE id = ?",
            (error, now_ts, run_id),
        )
        if lease_owner == run_owner:
            conn.execute(
                "UPDATE cron_jobs SET lease_owner = NULL, lease_until = NULL, "
                "last_status = 'interrupted', last_error = ?, updated_at = ? WHERE id = ?",
                (error, now_ts, job_id),
            )
        recovered.append(RunRecord.from_row(conn.execute(_SQL_RUN, (run_id,)).fetchone()))
    return recovered


def _late_words(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 2880:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d"


def _fetch_all(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def _tx_exec(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    return conn.execute(sql, params).rowcount


# --------------------------------------------------------------------------------------------


class CronStore:
    """Cron jobs over a :class:`SessionStore` (shared with the gateway, or opened alone).

    Every method is one hop to the store's worker thread, and every write one transaction.
    Methods that take ``now`` take it from the caller's clock, so tests control time.
    """

    def __init__(self, store: SessionStore, *, owns_store: bool = False) -> None:
        self.store = store
        self._owns_store = owns_store

    @classmethod
    async def open(cls, path: str | Path) -> CronStore:
        """Open the database file alone (the CLI); :meth:`close` closes it."""
        return cls(await SessionStore.open(path), owns_store=True)

    async def close(self) -> None:
        if self._owns_store:
            await self.store.close()

    # --- jobs -------------------------------------------------------------------------

    async def add(
        self,
        *,
        name: str,
        prompt: str,
        schedule: Schedule,
        now: datetime,
        deliver: str = "local",
        origin: SessionSource | None = None,
        repeat: int | None = None,
    ) -> Job:
        """Store a new job whose first run is the schedule's next after ``now``.

        Raises:
            CronError: The schedule has no future run, or the repeat count is not positive.
        """
        next_run = schedule.next_run(now)
        if next_run is None:
            raise CronError("That schedule has no run in the future.")
        if repeat is not None and repeat < 1:
            raise CronError("The repeat count must be at least 1.")
        now_ts = now.timestamp()
        values = {
            "name": name.strip() or prompt[:40],
            "prompt": prompt,
            "schedule": schedule.expr,
            "tz": schedule.tz,
            "deliver": deliver or "local",
            "origin": _source_to_json(origin),
            "enabled": 1,
            "repeat": repeat,
            "next_run": _ts(next_run),
            "created_at": now_ts,
            "updated_at": now_ts,
        }
        return await self.store.write_sync(_tx_add, values)

    async def get(self, job_id: str) -> Job | None:
        rows = await self.store.read_sync(_fetch_all, _SQL_JOB, (job_id,))
        return Job.from_row(rows[0]) if rows else None

    async def list(self) -> list[Job]:
        """Every job, oldest first."""
        return [Job.from_row(r) for r in await self.store.read_sync(_fetch_all, _SQL_JOBS, ())]

    async def find(self, ref: str, scope: Scope = OPERATOR) -> Job:
        """The job a person meant by ``ref``: an id, a unique id prefix, or a name.

        Only jobs ``scope`` sees count: another chat's job is "no job", never "not yours".

        Raises:
            CronError: No job, or several, match.
        """
        ref = ref.strip()
        if not ref:
            raise CronError("Which job? Give its id or name (see /cron list).")
        jobs = [j for j in await self.list() if scope.sees(j)]
        for test in (
            lambda j: j.id == ref.lower(),
            lambda j: j.name.casefold() == ref.casefold(),
            lambda j: j.id.startswith(ref.lower()),
            lambda j: j.name.casefold().startswith(ref.casefold()),
        ):
            found = [j for j in jobs if test(j)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                names = ", ".join(f"{j.id} ({j.name})" for j in found[:5])
                raise CronError(f"“{ref}” matches several jobs: {names}. Use the id.")
        raise CronError(f"No job matches “{ref}”. See /cron list.")

    async def pause(self, job_id: str, now: datetime) -> Job:
        job = await self.store.write_sync(
            _tx_update, job_id, {"enabled": 0, "updated_at": now.timestamp()}
        )
        if job is None:
            raise CronError(f"There is no job {job_id}.")
        return job

    async def resume(self, job_id: str, now: datetime) -> Job:
        """Enable again; the next run is the first one after ``now`` (no catching up).

        Raises:
            CronError: The job is gone, or it is a one-shot whose time has passed.
        """
        return await self.store.write_sync(_tx_resume, job_id, now)

    async def remove(self, job_id: str) -> bool:
        """Delete the job and its run history (output files stay on disk)."""
        count = await self.store.write_sync(
            _tx_exec, "DELETE FROM cron_jobs WHERE id = ?", (job_id,)
        )
        return count > 0

    async def request_run(self, job_id: str, now: datetime) -> Job:
        """Ask whichever gateway ticks next to run the job once (paused ones too)."""
        job = await self.store.write_sync(
            _tx_update, job_id, {"run_requested_at": now.timestamp(), "updated_at": now.timestamp()}
        )
        if job is None:
            raise CronError(f"There is no job {job_id}.")
        return job

    # --- running ----------------------------------------------------------------------

    async def claim_due(
        self,
        now: datetime,
        *,
        grace_s: float,
        owner: str,
        lease_s: float,
        liveness: LivenessCheck | None = None,
    ) -> tuple[builtins.list[Claim], builtins.list[tuple[Job, RunRecord]]]:
        """Claim the due jobs for ``owner``; returns ``(claims, missed)``. See the module doc."""
        return await self.store.write_sync(_tx_claim_due, now, grace_s, owner, lease_s, liveness)

    async def claim_now(
        self,
        job_id: str,
        now: datetime,
        *,
        owner: str,
        lease_s: float,
        liveness: LivenessCheck | None = None,
    ) -> Claim:
        """Claim a job for an immediate run outside its schedule (next_run unchanged).

        Raises:
            CronError: No such job, or it is running (here or in another process).
        """
        return await self.store.write_sync(_tx_claim_now, job_id, now, owner, lease_s, liveness)

    async def renew_lease(self, job_id: str, owner: str, until: datetime) -> bool:
        """Extend our lease; False if it is no longer ours (or the job is gone)."""
        count = await self.store.write_sync(
            _tx_exec,
            "UPDATE cron_jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?",
            (until.timestamp(), job_id, owner),
        )
        return count > 0

    async def finish_run(
        self,
        job_id: str,
        run_id: int,
        *,
        owner: str,
        now: datetime,
        status: str,
        error: str | None = None,
        delivery_status: str | None = None,
        delivery_error: str | None = None,
        output_path: str | None = None,
    ) -> FinishResult:
        """Record a run's result, free the lease, and retire a finished one-shot / repeat job.

        A job with no runs left is deleted when its last run worked and was delivered; else
        it is kept, disabled, so the failure stays visible.
        """
        return await self.store.write_sync(
            _tx_finish,
            job_id,
            run_id,
            owner,
            now,
            status,
            error,
            delivery_status,
            delivery_error,
            output_path,
        )

    async def recover_stale(
        self, now: datetime, *, owner: str, liveness: LivenessCheck
    ) -> builtins.list[RunRecord]:
        """Mark runs of owners that died (or whose lease ran out) as ``interrupted``."""
        return await self.store.write_sync(_tx_recover, now, owner, liveness)

    async def runs(self, job_id: str, limit: int = 20) -> builtins.list[RunRecord]:
        """A job's most recent runs, newest first."""
        rows = await self.store.read_sync(
            _fetch_all,
            f"SELECT {_RUN_COLS} FROM cron_runs WHERE job_id = ? ORDER BY id DESC LIMIT ?",
            (job_id, limit),
        )
        return [RunRecord.from_row(r) for r in rows]

    # --- liveness of the scheduler (for the CLI) --------------------------------------

    async def beat(self, owner: str, now: datetime) -> None:
        """Note that a ticker is alive (the CLI says whether a gateway will pick changes up)."""
        await self.store.kv_set("cron.ticker", json.dumps({"owner": owner, "at": now.timestamp()}))

    async def last_beat(self) -> tuple[str, datetime] | None:
        raw = await self.store.kv_get("cron.ticker")
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return str(data["owner"]), datetime.fromtimestamp(float(data["at"]), UTC)
        except (ValueError, KeyError, TypeError):
            return None


def wall_now() -> datetime:
    """Aware UTC now (for callers without a clock, e.g. the CLI)."""
    return datetime.fromtimestamp(time.time(), UTC)
