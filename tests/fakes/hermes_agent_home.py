"""Builds a Hermes Agent 0.19 home the way Hermes Agent itself lays it out, for import tests.

The layout and formats are facts read from hermes-agent 0.19 (``hermes_state.py``,
``cron/jobs.py``, ``gateway/pairing.py``); CI has no hermes-agent, so they are written out
here: ``state.db`` in WAL mode with its ``sessions``/``messages`` tables (every column 0.19
has), its FTS5 table and triggers and its ``schema_version`` table; ``cron/jobs.json`` as
``{"jobs": [...], "updated_at": ...}``; ``pairing/<platform>-approved.json`` (the older
folder) or ``platforms/pairing/`` (the newer one); ``SOUL.md``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 22

_SESSIONS = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, user_id TEXT, session_key TEXT, chat_id TEXT,
    chat_type TEXT, thread_id TEXT, display_name TEXT, origin_json TEXT,
    expiry_finalized INTEGER DEFAULT 0, model TEXT, model_config TEXT, system_prompt TEXT,
    parent_session_id TEXT, started_at REAL NOT NULL, ended_at REAL, end_reason TEXT,
    message_count INTEGER DEFAULT 0, tool_call_count INTEGER DEFAULT 0,
    input_tokens INTEGER DEFAULT 0, output_tokens INTEGER DEFAULT 0,
    cache_read_tokens INTEGER DEFAULT 0, cache_write_tokens INTEGER DEFAULT 0,
    reasoning_tokens INTEGER DEFAULT 0, cwd TEXT, git_branch TEXT, git_repo_root TEXT,
    billing_provider TEXT, billing_base_url TEXT, billing_mode TEXT, estimated_cost_usd REAL,
    actual_cost_usd REAL, cost_status TEXT, cost_source TEXT, pricing_version TEXT, title TEXT,
    api_call_count INTEGER DEFAULT 0, handoff_state TEXT, handoff_platform TEXT,
    handoff_error TEXT, compression_failure_cooldown_until REAL, compression_failure_error TEXT,
    compression_fallback_streak INTEGER NOT NULL DEFAULT 0, profile_name TEXT,
    rewind_count INTEGER NOT NULL DEFAULT 0, archived INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (parent_session_id) REFERENCES sessions(id)
)"""
_MESSAGES = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL, content TEXT, tool_call_id TEXT, tool_calls TEXT, tool_name TEXT,
    effect_disposition TEXT, timestamp REAL NOT NULL, token_count INTEGER, finish_reason TEXT,
    reasoning TEXT, reasoning_content TEXT, reasoning_details TEXT, codex_reasoning_items TEXT,
    codex_message_items TEXT, platform_message_id TEXT, observed INTEGER DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1, compacted INTEGER NOT NULL DEFAULT 0, api_content TEXT
)"""
_OTHER = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state_meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_messages_session ON messages(session_id, timestamp)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(content)",
    """CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id,
            COALESCE(new.content, '') || ' ' || COALESCE(new.tool_name, '') || ' ' ||
            COALESCE(new.tool_calls, ''));
    END""",
)


@dataclass
class HermesAgentHome:
    """A Hermes Agent home under construction; every method writes at once."""

    path: Path

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None

    # --- state.db ----------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            conn = sqlite3.connect(self.path / "state.db", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            for sql in (_SESSIONS, _MESSAGES, *_OTHER):
                conn.execute(sql)
            if conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            self._db = conn
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def session(
        self,
        session_id: str,
        source: str = "cli",
        *,
        started_at: float,
        ended_at: float | None = None,
        title: str | None = None,
        chat_id: str | None = None,
        chat_type: str | None = None,
        user_id: str | None = None,
        thread_id: str | None = None,
        display_name: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        per_user: bool = False,
    ) -> None:
        """A session row; its key as Hermes Agent builds it (``per_user``: a group session
        of one participant, ``group_sessions_per_user``)."""
        key = None
        if chat_id is not None:
            key = f"agent:main:{source}:{chat_type or 'dm'}:{chat_id}"
            if thread_id:
                key += f":{thread_id}"
            if per_user and user_id:
                key += f":{user_id}"
        self.db.execute(
            "INSERT INTO sessions (id, source, user_id, session_key, chat_id, chat_type, "
            "thread_id, display_name, started_at, ended_at, title, input_tokens, output_tokens, "
            "model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'some-model')",
            (
                session_id,
                source,
                user_id,
                key,
                chat_id,
                chat_type,
                thread_id,
                display_name,
                started_at,
                ended_at,
                title,
                input_tokens,
                output_tokens,
            ),
        )

    def message(
        self,
        session_id: str,
        role: str,
        content: str | None,
        *,
        at: float,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        tool_name: str | None = None,
        active: int = 1,
        compacted: int = 0,
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO messages (session_id, role, content, tool_call_id, tool_calls, "
            "tool_name, timestamp, active, compacted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                role,
                content,
                tool_call_id,
                json.dumps(tool_calls) if tool_calls else None,
                tool_name,
                at,
                active,
                compacted,
            ),
        )
        self.db.execute(
            "UPDATE sessions SET message_count = message_count + 1 WHERE id = ?", (session_id,)
        )
        return int(cur.lastrowid or 0)

    # --- other files ---------------------------------------------------------------------

    def approved(self, platform: str, users: dict[str, str], *, folder: str = "pairing") -> None:
        target = self.path / folder
        target.mkdir(parents=True, exist_ok=True)
        data = {
            uid: {"user_name": name, "approved_at": 1_760_000_000.0} for uid, name in users.items()
        }
        (target / f"{platform}-approved.json").write_text(json.dumps(data, indent=2))
        # Waiting codes and rate limits sit beside them; an import must leave them alone.
        (target / f"{platform}-pending.json").write_text(
            json.dumps({"ab12": {"hash": "00", "salt": "11", "user_id": "9", "created_at": 1.0}})
        )
        (target / "_rate_limits.json").write_text(json.dumps({f"{platform}:9": 1.0}))

    def jobs(self, jobs: list[dict[str, Any]]) -> None:
        folder = self.path / "cron"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "jobs.json").write_text(
            json.dumps({"jobs": jobs, "updated_at": datetime.now(UTC).isoformat()}, indent=2)
        )

    def soul(self, text: str) -> None:
        (self.path / "SOUL.md").write_text(text)


def hermes_job(
    job_id: str,
    prompt: str,
    schedule: dict[str, Any],
    *,
    name: str | None = None,
    deliver: str = "local",
    origin: dict[str, Any] | None = None,
    enabled: bool = True,
    repeat_times: int | None = None,
    completed: int = 0,
    next_run_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A job dict with every field Hermes Agent 0.19's ``create_job`` writes."""
    now = datetime.now(UTC)
    job = {
        "id": job_id,
        "name": name or prompt[:50],
        "prompt": prompt,
        "skills": [],
        "skill": None,
        "model": None,
        "provider": None,
        "provider_snapshot": None,
        "model_snapshot": None,
        "base_url": None,
        "script": None,
        "no_agent": False,
        "context_from": None,
        "schedule": schedule,
        "schedule_display": schedule.get("display", ""),
        "repeat": {"times": repeat_times, "completed": completed},
        "enabled": enabled,
        "state": "scheduled" if enabled else "paused",
        "paused_at": None,
        "paused_reason": None,
        "created_at": (now - timedelta(days=3)).isoformat(),
        "next_run_at": (next_run_at or now + timedelta(hours=1)).isoformat(),
        "last_run_at": None,
        "last_status": None,
        "last_error": None,
        "last_delivery_error": None,
        "deliver": deliver,
        "origin": origin,
        "enabled_toolsets": None,
        "workdir": None,
    }
    job.update(extra)
    return job
