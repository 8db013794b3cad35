"""Reading a Hermes Agent home (``~/.hermes``) without changing a byte of it.

What Hermes Agent 0.19 keeps there, as far as an import needs it:

* ``pairing/`` (older installs) or ``platforms/pairing/``: ``<platform>-approved.json``, an
  object ``{user_id: {"user_name": str, "approved_at": epoch seconds}}`` per platform (files
  starting with ``_`` are its rate limits, ``-pending.json`` its waiting codes: not imported,
  a code is hashed and means nothing here);
* ``cron/jobs.json``: ``{"jobs": [...], "updated_at": ...}`` (a bare list is accepted too),
  each job a dict whose ``schedule`` is ``{"kind": "cron"|"interval"|"once", ...}``;
* ``state.db``: SQLite with ``sessions`` (``id``, ``source`` = platform, ``user_id``,
  ``chat_id``, ``chat_type``, ``thread_id``, ``display_name``, ``title``, ``started_at``,
  ``ended_at``, ``input_tokens``, ``output_tokens``) and ``messages`` (``id``, ``session_id``,
  ``role``, ``content``, ``tool_calls`` as JSON text, ``tool_call_id``, ``tool_name``,
  ``timestamp``, and since compaction/undo ``active``: 0 for rows taken back or summarised
  away, which the live conversation no longer has);
* ``SOUL.md``: the agent's identity, put at the top of its system prompt.

``state.db`` may be in use by a running Hermes Agent (WAL mode). It is never opened in place:
even a read-only connection may create ``-wal``/``-shm`` files, and the last connection to
close a WAL database checkpoints it into the main file. The file and its WAL are copied into
a temporary folder and read there; a copy torn by a concurrent checkpoint fails SQLite's
``quick_check`` and is taken again. Counting for the first-start notice opens the file with
``immutable=1`` instead, which reads without any lock or side file (and may miss what sits
in the WAL, which is fine for a count).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "HermesHome",
    "HermesMessage",
    "HermesPairing",
    "HermesSession",
    "HomeSummary",
    "ReadError",
    "read_home",
    "summarize_home",
]

PAIRING_DIRS = ("pairing", "platforms/pairing")
JOBS_FILE = "cron/jobs.json"
STATE_DB = "state.db"
SOUL_FILE = "SOUL.md"
#: A copy of state.db is retried this often when a concurrent checkpoint tore it.
SNAPSHOT_TRIES = 3


class ReadError(RuntimeError):
    """The home cannot be read as a Hermes Agent home; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class HermesPairing:
    platform: str
    user_id: str
    user_name: str | None
    approved_at: float | None


@dataclass(slots=True)
class HermesMessage:
    id: int
    role: str
    content: str | None
    timestamp: float
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None


@dataclass(slots=True)
class HermesSession:
    id: str
    source: str
    started_at: float
    ended_at: float | None = None
    user_id: str | None = None
    chat_id: str | None = None
    chat_type: str | None = None
    thread_id: str | None = None
    display_name: str | None = None
    title: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    session_key: str | None = None
    """Hermes Agent's own key (``agent:main:telegram:group:<chat>[:<thread>][:<user>]``):
    whether a group session was one participant's (``group_sessions_per_user``)."""
    messages: list[HermesMessage] = field(default_factory=list)
    """Only the live ones (``active`` 1), after the id the caller already has."""


@dataclass
class HermesHome:
    """Everything an import takes from one home, read in one go."""

    path: Path
    pairings: list[HermesPairing] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[HermesSession] = field(default_factory=list)
    soul: str | None = None
    problems: list[str] = field(default_factory=list)
    """Files that exist but could not be read (each named, with why); the rest still imports."""


@dataclass(frozen=True, slots=True)
class HomeSummary:
    """What a home holds, counted cheaply (for the first-start notice)."""

    sessions: int = 0
    jobs: int = 0
    pairings: int = 0
    soul: bool = False

    @property
    def empty(self) -> bool:
        return not (self.sessions or self.jobs or self.pairings or self.soul)


# --------------------------------------------------------------------------------------------
# pairings, jobs, soul


def read_pairings(home: Path, problems: list[str] | None = None) -> list[HermesPairing]:
    """Approved users of every platform, from both pairing folders (the first one read wins)."""
    seen: dict[tuple[str, str], HermesPairing] = {}
    for sub in PAIRING_DIRS:
        folder = home / sub
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*-approved.json")):
            platform = file.name[: -len("-approved.json")]
            if not platform or platform.startswith("_"):
                continue
            data = _read_json(file, problems)
            if not isinstance(data, dict):
                if data is not None and problems is not None:
                    problems.append(f"{file}: not a JSON object of approved users; skipped")
                continue
            for uid, info in data.items():
                uid = str(uid).strip()
                if not uid or (platform, uid) in seen:
                    continue
                info = info if isinstance(info, dict) else {}
                name = info.get("user_name")
                at = info.get("approved_at")
                seen[(platform, uid)] = HermesPairing(
                    platform=platform,
                    user_id=uid,
                    user_name=str(name) if name else None,
                    approved_at=float(at) if isinstance(at, int | float) else None,
                )
    return list(seen.values())


def read_jobs(home: Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """The jobs of ``cron/jobs.json`` as stored (dicts; converting them is cron's business)."""
    data = _read_json(home / JOBS_FILE, problems)
    if isinstance(data, dict):
        data = data.get("jobs", [])
    if data is None:
        return []
    if not isinstance(data, list):
        if problems is not None:
            problems.append(f"{home / JOBS_FILE}: expected a list of jobs; skipped")
        return []
    return [job for job in data if isinstance(job, dict)]


def read_soul(home: Path, problems: list[str] | None = None) -> str | None:
    file = home / SOUL_FILE
    if not file.is_file():
        return None
    try:
        text = file.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as exc:
        if problems is not None:
            problems.append(f"{file}: cannot be read ({exc}); skipped")
        return None
    return text or None


def _read_json(file: Path, problems: list[str] | None) -> Any:
    if not file.is_file():
        return None
    try:
        # utf-8-sig: an editor's byte-order mark must not make a whole file unreadable.
        return json.loads(file.read_text(encoding="utf-8-sig"), strict=False)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if problems is not None:
            problems.append(f"{file}: cannot be read as JSON ({exc}); skipped")
        return None


# --------------------------------------------------------------------------------------------
# state.db


@contextlib.contextmanager
def snapshot(db: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a private copy of ``db`` (and its WAL): the original is never opened.

    Raises:
        ReadError: The file is not a usable SQLite database, or kept changing under us.
    """
    with tempfile.TemporaryDirectory(prefix="hermes-import-") as tmp:
        copy = Path(tmp) / STATE_DB
        last_error = "it kept changing while being copied"
        for _ in range(SNAPSHOT_TRIES):
            for suffix in ("", "-wal"):
                target = Path(str(copy) + suffix)
                target.unlink(missing_ok=True)
                source = Path(str(db) + suffix)
                if source.exists():
                    shutil.copyfile(source, target)
            Path(str(copy) + "-shm").unlink(missing_ok=True)
            conn = sqlite3.connect(copy)
            try:
                ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            except sqlite3.DatabaseError as exc:
                ok, last_error = False, str(exc)
            if ok:
                try:
                    yield conn
                finally:
                    conn.close()
                return
            conn.close()
        raise ReadError(f"{db} cannot be read: {last_error}")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _pick(cols: set[str], wanted: tuple[str, ...]) -> str:
    """A select list with NULL standing in for columns an older schema does not have."""
    return ", ".join(c if c in cols else f"NULL AS {c}" for c in wanted)


_SESSION_COLS = (
    "id",
    "source",
    "started_at",
    "ended_at",
    "user_id",
    "chat_id",
    "chat_type",
    "thread_id",
    "display_name",
    "title",
    "input_tokens",
    "output_tokens",
    "session_key",
)
_MESSAGE_COLS = (
    "id",
    "session_id",
    "role",
    "content",
    "timestamp",
    "tool_calls",
    "tool_call_id",
    "tool_name",
)


def read_sessions(
    conn: sqlite3.Connection, after: Mapping[str, int] | None = None
) -> list[HermesSession]:
    """Sessions with their live messages; ``after[id]``: only messages past that message id."""
    after = after or {}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"sessions", "messages"} <= tables:
        raise ReadError("it has no sessions/messages tables (not a Hermes Agent state.db)")
    scols, mcols = _columns(conn, "sessions"), _columns(conn, "messages")
    sessions: dict[str, HermesSession] = {}
    for row in conn.execute(
        f"SELECT {_pick(scols, _SESSION_COLS)} FROM sessions ORDER BY started_at, id"
    ):
        sessions[str(row[0])] = HermesSession(
            id=str(row[0]),
            source=str(row[1] or ""),
            started_at=float(row[2] or 0.0),
            ended_at=float(row[3]) if row[3] is not None else None,
            user_id=_text(row[4]),
            chat_id=_text(row[5]),
            chat_type=_text(row[6]),
            thread_id=_text(row[7]),
            display_name=_text(row[8]),
            title=_text(row[9]),
            input_tokens=int(row[10] or 0),
            output_tokens=int(row[11] or 0),
            session_key=_text(row[12]),
        )
    live = "(active IS NULL OR active = 1)" if "active" in mcols else "1"
    for row in conn.execute(
        f"SELECT {_pick(mcols, _MESSAGE_COLS)} FROM messages WHERE {live} ORDER BY id"
    ):
        session = sessions.get(str(row[1]))
        if session is None or int(row[0]) <= after.get(session.id, 0):
            continue
        session.messages.append(
            HermesMessage(
                id=int(row[0]),
                role=str(row[2] or ""),
                content=row[3] if isinstance(row[3], str) else None,
                timestamp=float(row[4] or session.started_at),
                tool_calls=_tool_calls(row[5]),
                tool_call_id=_text(row[6]),
                tool_name=_text(row[7]),
            )
        )
    return list(sessions.values())


def _text(value: Any) -> str | None:
    return None if value is None or str(value) == "" else str(value)


def _tool_calls(raw: Any) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(c, dict) for c in value) and value:
        return value
    return None


# --------------------------------------------------------------------------------------------


def read_home(home: Path, *, after: Mapping[str, int] | None = None) -> HermesHome:
    """Read what an import takes from ``home`` (blocking file I/O: call it off the loop).

    A file that cannot be read is listed in ``problems`` and the rest is still read.
    """
    out = HermesHome(path=home)
    out.pairings = read_pairings(home, out.problems)
    out.jobs = read_jobs(home, out.problems)
    out.soul = read_soul(home, out.problems)
    db = home / STATE_DB
    if db.is_file():
        try:
            with snapshot(db) as conn:
                out.sessions = read_sessions(conn, after)
        except (ReadError, sqlite3.DatabaseError) as exc:
            out.problems.append(f"{db}: {exc}" if str(db) not in str(exc) else str(exc))
    return out


def summarize_home(home: Path) -> HomeSummary:
    """Count what ``home`` holds without copying anything (blocking: call it off the loop)."""
    sessions = 0
    db = home / STATE_DB
    if db.is_file():
        uri = f"file:{quote(str(db))}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True)
            try:
                sessions = int(conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error:
            sessions = 0
    return HomeSummary(
        sessions=sessions,
        jobs=len(read_jobs(home)),
        pairings=len(read_pairings(home)),
        soul=read_soul(home) is not None,
    )
