"""Hermes Agent's cron jobs (``cron/jobs.json``) turned into ours, for the importer.

Hermes Agent stores a schedule as ``{"kind": "cron", "expr": ...}``, ``{"kind": "interval",
"minutes": N}`` or ``{"kind": "once", "run_at": ISO}``, a repeat as ``{"times": N|None,
"completed": K}``, where to deliver as the same target language we use (``local``,
``origin``, ``telegram``, ``telegram:<chat>[:<thread>]``, comma lists; plus ``all``) and the
chat that made the job as ``origin`` ``{platform, chat_id, chat_name, thread_id, user_id}``.
Each job becomes a row of ``cron_jobs`` with the same meaning, or is skipped with the reason
(a script job, a one-shot whose time passed, a schedule we cannot run the same way).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from hermes_cron.jobs import origin_json
from hermes_cron.schedules import ScheduleError, parse_schedule
from hermes_gateway.delivery.router import TargetError, parse_targets
from hermes_gateway.importer import JobImport
from hermes_gateway.models import ChatType, SessionSource

__all__ = ["JobConverter", "write_job"]

_ID = re.compile(r"^[0-9a-z][0-9a-z_-]{0,39}$")


class JobConverter:
    """Converts one Hermes Agent job dict; ``tz`` is our cron time zone, ``now`` aware UTC."""

    def __init__(self, *, tz: str, now: datetime | None = None) -> None:
        self.tz = tz
        self.now = now or datetime.now(UTC)

    def __call__(self, job: dict[str, Any]) -> JobImport:
        notes: list[str] = []
        prompt = str(job.get("prompt") or "").strip()
        if job.get("no_agent") or (job.get("script") and not prompt):
            return JobImport(None, "it runs a script without the agent; scripts are not run here")
        if not prompt:
            return JobImport(None, "it has no prompt")
        if job.get("script"):
            notes.append("its script is not run here; the prompt runs alone")
        if job.get("skills") or job.get("skill"):
            notes.append("skills are not loaded here")
        if job.get("model") or job.get("provider") or job.get("base_url"):
            notes.append("it runs on the configured model, not its own")
        raw_repeat = job.get("repeat")
        repeat: dict[str, Any] = raw_repeat if isinstance(raw_repeat, dict) else {}
        times = _int(repeat.get("times"))
        done = _int(repeat.get("completed")) or 0
        if times is not None and times > 0 and done >= times:
            return JobImport(None, "it has run all its repeats")
        try:
            schedule = parse_schedule(self._schedule_text(job), tz=self.tz, now=self.now)
        except ScheduleError as exc:
            return JobImport(None, f"its schedule cannot be run here: {exc}")
        next_run = schedule.next_run(self.now)
        if next_run is None:
            return JobImport(None, "its schedule has no run in the future")
        deliver, deliver_notes = _deliver(job.get("deliver"))
        notes += deliver_notes
        enabled = bool(job.get("enabled", True)) and str(job.get("state") or "") != "paused"
        created = _when(job.get("created_at")) or self.now
        last_run = _when(job.get("last_run_at"))
        status = job.get("last_status")
        values: dict[str, Any] = {
            "name": str(job.get("name") or prompt[:50]).strip() or prompt[:40],
            "prompt": prompt,
            "schedule": schedule.expr,
            "tz": schedule.tz,
            "deliver": deliver,
            "origin": origin_json(_origin(job.get("origin"))),
            "enabled": 1 if enabled else 0,
            "repeat": times if times and times > 0 else None,
            "runs": done,
            "next_run": next_run.timestamp(),
            "last_run": last_run.timestamp() if last_run else None,
            "last_status": status if status in ("ok", "error") else None,
            "last_error": str(job["last_error"]) if job.get("last_error") else None,
            "created_at": created.timestamp(),
            "updated_at": self.now.timestamp(),
        }
        return JobImport(values, notes=notes)

    def _schedule_text(self, job: dict[str, Any]) -> str:
        raw = job.get("schedule")
        if not isinstance(raw, dict):
            return str(raw or job.get("schedule_display") or "")
        kind = raw.get("kind")
        if kind == "cron":
            return str(raw.get("expr") or "")
        if kind == "interval":
            minutes = _int(raw.get("minutes")) or 0
            # Keep its rhythm: the next run stays where Hermes Agent had it.
            anchor = _when(job.get("next_run_at"))
            if anchor is None or minutes <= 0:
                return f"every {minutes}m"
            start = (anchor - timedelta(minutes=minutes)).astimezone(UTC)
            return f"every {minutes}m from {start:%Y-%m-%dT%H:%M:%S}Z"
        if kind == "once":
            return str(raw.get("run_at") or "")
        return str(raw.get("display") or raw.get("expr") or "")


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _deliver(raw: Any) -> tuple[str, list[str]]:
    items = [i.strip() for i in str(raw or "local").split(",") if i.strip()]
    kept: list[str] = []
    notes: list[str] = []
    for item in items:
        if item.lower() == "all":
            notes.append('delivery to "all" home channels is not supported; dropped')
            continue
        try:
            parse_targets(item)
        except TargetError:
            notes.append(f'delivery target "{item}" is not understood here; dropped')
            continue
        kept.append(item)
    return (",".join(kept) or "local"), notes


def _origin(raw: Any) -> SessionSource | None:
    if not isinstance(raw, dict) or not raw.get("platform") or not raw.get("chat_id"):
        return None
    chat_id = str(raw["chat_id"])
    thread = str(raw["thread_id"]) if raw.get("thread_id") else None
    chat_type: ChatType
    given = raw.get("chat_type")
    if given in ("dm", "group", "channel", "thread"):
        chat_type = given
    else:  # Hermes Agent does not keep it; Telegram groups have negative ids.
        chat_type = "group" if chat_id.startswith("-") else "dm"
    return SessionSource(
        platform=str(raw["platform"]),
        chat_id=chat_id,
        chat_type=chat_type,
        thread_id=thread,
        user_id=str(raw["user_id"]) if raw.get("user_id") else None,
        chat_name=str(raw["chat_name"]) if raw.get("chat_name") else None,
    )


def write_job(conn: sqlite3.Connection, preferred_id: str, values: dict[str, Any]) -> str:
    """Insert the job, keeping Hermes Agent's id when it is free and usable here."""
    job_id = preferred_id.lower()
    taken = conn.execute("SELECT 1 FROM cron_jobs WHERE id = ?", (job_id,)).fetchone()
    while taken or not _ID.match(job_id):
        job_id = secrets.token_hex(4)
        taken = conn.execute("SELECT 1 FROM cron_jobs WHERE id = ?", (job_id,)).fetchone()
    row = {"id": job_id, **values}
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT INTO cron_jobs ({cols}) VALUES ({marks})", tuple(row.values()))
    return job_id
