"""``hermes import hermes-agent``: bring a Hermes Agent home's state into our store, once.

Read-only over there (see :mod:`.hermes_agent`), one transaction here: sessions and their
messages, approved pairings, cron jobs and ``SOUL.md`` all land together or not at all, and
each item goes into the import ledger (:mod:`hermes_gateway.store.imports`). Running it again
imports nothing twice: a session already imported only gets the messages written over there
since, a job or pairing already looked at is left alone (so a job deleted or a user revoked
here stays so), and ``SOUL.md`` is taken again only if its text changed.

Cron jobs are converted by the caller (``convert_job``/``write_job``): schedules are
hermes_cron's language and the core does not import it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hermes_gateway.access.pairing import import_approved
from hermes_gateway.models import LOCAL_PLATFORM, build_session_key
from hermes_gateway.store import SessionStore, StoredMessage
from hermes_gateway.store.imports import (
    SessionSeed,
    append_imported_messages,
    insert_imported_session,
    kv_put,
    ledger_entries,
    ledger_put,
    session_exists,
)

from .hermes_agent import HermesHome, HermesMessage, HermesSession, read_home

__all__ = [
    "IMPORTED_PERSONALITY_KEY",
    "ImportReport",
    "JobImport",
    "SOURCE_PREFIX",
    "import_hermes_agent",
    "imported_personality",
    "source_id",
]

SOURCE_PREFIX = "hermes-agent:"
#: The kv key holding the imported personality: ``{"name": ..., "text": ...}``.
IMPORTED_PERSONALITY_KEY = "personality.imported"
SOUL_PERSONALITY = "soul"
APPROVED_BY = "hermes-agent"

#: Hermes Agent's session sources that are the person at the terminal here.
_LOCAL_SOURCES = frozenset({"cli", "tui", "acp", "local", ""})
_PLATFORM_NAMES = {"api_server": "api"}
_CHAT_TYPES = {"dm": "dm", "private": "dm", "group": "group", "supergroup": "group"}
_CHAT_TYPES.update({"channel": "channel", "thread": "thread", "forum": "group"})


@dataclass
class JobImport:
    """A Hermes Agent job converted for this store, or why it was not."""

    values: dict[str, Any] | None
    """``cron_jobs`` columns except ``id``; None when skipped."""
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    """What was changed or dropped on the way (an unsupported field, a delivery target)."""


JobConverter = Callable[[dict[str, Any]], JobImport]
#: ``(conn, preferred id, values) -> id here``, inside the import's transaction.
JobWriter = Callable[[sqlite3.Connection, str, dict[str, Any]], str]


@dataclass
class ImportReport:
    """What an import did, for the person who ran it."""

    home: Path
    sessions_new: int = 0
    sessions_updated: int = 0
    messages: int = 0
    jobs: int = 0
    pairings: int = 0
    soul: str = ""
    """``imported``, ``updated`` or empty (nothing to do)."""
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def nothing_new(self) -> bool:
        return not (
            self.sessions_new or self.sessions_updated or self.jobs or self.pairings or self.soul
        )

    def lines(self) -> list[str]:
        out = [f"Imported from Hermes Agent at {self.home}:"]
        if self.nothing_new:
            out = [f"Nothing new to import from {self.home}."]
        else:
            sessions = f"{self.sessions_new} new session(s)"
            if self.sessions_updated:
                sessions += f", {self.sessions_updated} continued"
            out.append(f"  {sessions} with {self.messages} message(s) (search them with F3)")
            out.append(f"  {self.jobs} cron job(s), {self.pairings} approved pairing(s)")
            if self.soul:
                out.append(f"  SOUL.md {self.soul} as the personality “{SOUL_PERSONALITY}”")
        out += [f"  skipped: {s}" for s in self.skipped]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  could not read: {p}" for p in self.problems]
        return out


def source_id(home: Path) -> str:
    """How the ledger names a home (two homes imported into one store stay apart)."""
    return SOURCE_PREFIX + str(home.expanduser().resolve())


async def import_hermes_agent(
    store: SessionStore,
    home: Path,
    *,
    convert_job: JobConverter,
    write_job: JobWriter,
    clock: Callable[[], float] = time.time,
) -> ImportReport:
    """Import ``home`` into ``store`` (see the module docstring); never writes to ``home``."""
    source = source_id(home)
    known = await store.read_sync(ledger_entries, source, "session")
    after = {fid: int(e.revision or 0) for fid, e in known.items()}
    data = await asyncio.to_thread(read_home, home, after=after)
    jobs = [(job, convert_job(job)) for job in data.jobs]
    report = ImportReport(home=home, problems=list(data.problems))
    await store.write_sync(_tx_import, source, data, jobs, write_job, clock(), report)
    return report


def _tx_import(
    conn: sqlite3.Connection,
    source: str,
    data: HermesHome,
    jobs: list[tuple[dict[str, Any], JobImport]],
    write_job: JobWriter,
    now: float,
    report: ImportReport,
) -> None:
    _import_sessions(conn, source, data.sessions, now, report)
    _import_pairings(conn, source, data, now, report)
    _import_jobs(conn, source, jobs, write_job, now, report)
    _import_soul(conn, source, data.soul, now, report)


def _import_sessions(
    conn: sqlite3.Connection,
    source: str,
    sessions: list[HermesSession],
    now: float,
    report: ImportReport,
) -> None:
    known = ledger_entries(conn, source, "session")
    dropped_roles: set[str] = set()
    for hs in sessions:
        messages = [m for m in (_message(x, dropped_roles) for x in hs.messages) if m is not None]
        last_id = max((x.id for x in hs.messages), default=0)
        entry = known.get(hs.id)
        if entry is not None and entry.local_id is not None:
            if not hs.messages:
                continue
            report.messages += append_imported_messages(conn, entry.local_id, messages)
            report.sessions_updated += 1
            ledger_put(conn, source, "session", hs.id, entry.local_id, str(last_id), now)
            continue
        if not messages:
            continue  # an empty session is not worth a row; it is looked at again next time
        seed = _seed(conn, hs, messages)
        report.messages += insert_imported_session(conn, seed)
        report.sessions_new += 1
        ledger_put(conn, source, "session", hs.id, seed.session_id, str(last_id), now)
    if dropped_roles:
        report.notes.append(
            "messages with role(s) " + ", ".join(sorted(dropped_roles)) + " have no place here"
        )


def _message(hm: HermesMessage, dropped_roles: set[str]) -> StoredMessage | None:
    role = hm.role
    if role not in ("user", "assistant", "tool", "system"):
        dropped_roles.add(role or "(none)")
        return None
    return StoredMessage(
        role=role,
        content=hm.content,
        tool_calls=hm.tool_calls if role == "assistant" else None,
        tool_call_id=hm.tool_call_id if role == "tool" else None,
        name=hm.tool_name if role == "tool" else None,
        created_at=hm.timestamp,
    )


def _seed(
    conn: sqlite3.Connection, hs: HermesSession, messages: list[StoredMessage]
) -> SessionSeed:
    raw = (hs.source or "").strip().lower()
    display: str | None
    thread: str | None
    if raw in _LOCAL_SOURCES:
        platform, chat_type, chat_id, thread = LOCAL_PLATFORM, "dm", "operator", None
        display = "Terminal"
    else:
        platform = _PLATFORM_NAMES.get(raw, raw)
        if ":" in platform:
            platform = platform.replace(":", "_")
        chat_type = _CHAT_TYPES.get((hs.chat_type or "dm").lower(), "dm")
        chat_id = hs.chat_id or hs.user_id or hs.id
        thread = hs.thread_id
        display = hs.display_name
    session_id = hs.id
    if session_exists(conn, session_id):
        session_id = f"hermes-{hs.id}"
    last = max((m.created_at or 0.0 for m in messages), default=hs.started_at)
    return SessionSeed(
        session_id=session_id,
        session_key=build_session_key(
            platform, chat_type, chat_id, thread, user_id=_participant(hs, chat_type)
        ),
        platform=platform,
        chat_type=chat_type,
        chat_id=chat_id,
        thread_id=thread,
        user_id=hs.user_id,
        display_name=display,
        title=hs.title,
        created_at=hs.started_at or (messages[0].created_at or 0.0),
        ended_at=max(hs.ended_at or 0.0, last),
        prompt_tokens=hs.input_tokens,
        completion_tokens=hs.output_tokens,
        messages=messages,
    )


def _participant(hs: HermesSession, chat_type: str) -> str | None:
    """The user a Hermes Agent group session belonged to, when its key says it was theirs
    alone (its last part is the user), so they can /resume it here in the same group."""
    key, user = hs.session_key or "", hs.user_id
    if chat_type == "dm" or not user or not key.endswith(f":{user}"):
        return None
    return user if key.rsplit(":", 1)[-1] != (hs.thread_id or hs.chat_id) else None


def _import_pairings(
    conn: sqlite3.Connection, source: str, data: HermesHome, now: float, report: ImportReport
) -> None:
    known = ledger_entries(conn, source, "pairing")
    for p in data.pairings:
        fid = f"{p.platform}:{p.user_id}"
        if fid in known:
            continue
        if import_approved(
            conn, p.platform, p.user_id, p.user_name, p.approved_at or now, APPROVED_BY
        ):
            report.pairings += 1
        ledger_put(conn, source, "pairing", fid, fid, None, now)


def _import_jobs(
    conn: sqlite3.Connection,
    source: str,
    jobs: list[tuple[dict[str, Any], JobImport]],
    write_job: JobWriter,
    now: float,
    report: ImportReport,
) -> None:
    known = ledger_entries(conn, source, "job")
    for job, converted in jobs:
        fid = str(job.get("id") or job.get("name") or "")
        if not fid or fid in known:
            continue
        label = f"cron job {fid} ({job.get('name') or 'unnamed'})"
        if converted.values is None:
            report.skipped.append(f"{label}: {converted.skipped}")
            ledger_put(conn, source, "job", fid, None, None, now)
            continue
        local = write_job(conn, fid, converted.values)
        report.jobs += 1
        report.notes += [f"{label}: {n}" for n in converted.notes]
        ledger_put(conn, source, "job", fid, local, None, now)


def _import_soul(
    conn: sqlite3.Connection, source: str, soul: str | None, now: float, report: ImportReport
) -> None:
    if soul is None:
        return
    digest = hashlib.sha256(soul.encode()).hexdigest()
    entry = ledger_entries(conn, source, "soul").get("SOUL.md")
    if entry is not None and entry.revision == digest:
        return
    value = json.dumps({"name": SOUL_PERSONALITY, "text": soul}, ensure_ascii=False)
    kv_put(conn, IMPORTED_PERSONALITY_KEY, value)
    ledger_put(conn, source, "soul", "SOUL.md", IMPORTED_PERSONALITY_KEY, digest, now)
    report.soul = "updated" if entry is not None else "imported"


async def imported_personality(store: SessionStore) -> tuple[str, str] | None:
    """``(name, text)`` of the personality an import brought in, if any."""
    raw = await store.kv_get(IMPORTED_PERSONALITY_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return str(data["name"]), str(data["text"])
    except (ValueError, KeyError, TypeError):
        return None
