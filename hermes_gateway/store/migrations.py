"""Forward-only schema migrations, versioned by ``PRAGMA user_version``.

How to add a table for a new feature (pairing, cron, ...):

1. APPEND one entry to :data:`MIGRATIONS` below, with the next version number
   (``(4, _V4_PAIRING)``). Never edit or reorder an entry that has shipped: databases in the
   wild already ran it, and only the versions after theirs will run.
2. The step is either an SQL script (several statements, triggers allowed) or a callable
   ``fn(conn: sqlite3.Connection) -> None`` for data transforms that SQL cannot express. A
   callable must not commit or roll back: the runner wraps each step in its own
   ``BEGIN IMMEDIATE ... COMMIT`` together with the ``user_version`` bump, so a failing step
   leaves the database exactly at the previous version.
3. Add entries here, in this module, never by appending from another module at import time: a
   database's schema must not depend on which modules a process happened to import (the
   ``hermes pairing`` CLI imports very little).

Several processes may open the same file at once (gateway and CLI). Each step re-reads the
version after taking the write lock and skips steps another process has already applied.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

#: A migration step: an SQL script, or a callable run inside the step's transaction.
MigrationStep = str | Callable[[sqlite3.Connection], None]
#: ``(version, step)``; versions are 1, 2, 3, ... with no gap.
Migration = tuple[int, MigrationStep]


class SchemaVersionError(RuntimeError):
    """The database was written by a newer Hermes than this one; refuse rather than corrupt."""


_V1_SESSIONS_MESSAGES = """
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    session_key       TEXT NOT NULL,
    platform          TEXT NOT NULL,
    chat_type         TEXT NOT NULL,
    chat_id           TEXT NOT NULL,
    thread_id         TEXT,
    user_id           TEXT,
    display_name      TEXT,
    title             TEXT,
    -- casefold()ed title, kept by the store: SQLite's NOCASE folds ASCII only.
    title_fold        TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    ended_at          REAL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0
);
-- At most one active (not ended) session per key, enforced for every process.
CREATE UNIQUE INDEX sessions_active_key ON sessions(session_key) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX sessions_title_fold ON sessions(title_fold) WHERE title_fold IS NOT NULL;
CREATE INDEX sessions_key ON sessions(session_key);
CREATE INDEX sessions_updated ON sessions(updated_at);

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused after /undo
    session_id        TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role              TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool', 'system')),
    content           TEXT,
    tool_calls        TEXT,      -- JSON list, OpenAI format
    tool_call_id      TEXT,
    name              TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    interrupted       INTEGER NOT NULL DEFAULT 0,
    meta              TEXT,      -- JSON object, NULL when empty
    created_at        REAL NOT NULL
);
-- (session_id, rowid): in-order reads, last-N reads and per-session counts.
CREATE INDEX messages_session ON messages(session_id);
"""

_V2_MESSAGES_FTS = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages WHEN new.content IS NOT NULL BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages WHEN old.content IS NOT NULL BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content)
        SELECT 'delete', old.id, old.content WHERE old.content IS NOT NULL;
    INSERT INTO messages_fts(rowid, content)
        SELECT new.id, new.content WHERE new.content IS NOT NULL;
END;
-- Backfill what v1 already stored, with the same rule as the triggers (NULL content: nothing).
INSERT INTO messages_fts(rowid, content)
    SELECT id, content FROM messages WHERE content IS NOT NULL;
"""

_V3_INPUT_HISTORY_KV = """
CREATE TABLE input_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    scope      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX input_history_scope ON input_history(scope, id);

-- Small state of adapters and features (e.g. Telegram's update offset).
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT
) WITHOUT ROWID;
"""

_V4_CRON = """
-- Scheduled jobs (hermes_cron). Times are epoch seconds (UTC).
CREATE TABLE cron_jobs (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    prompt               TEXT NOT NULL,
    schedule             TEXT NOT NULL,      -- canonical text from hermes_cron.schedules
    tz                   TEXT NOT NULL,
    deliver              TEXT NOT NULL DEFAULT 'local',
    origin               TEXT,               -- JSON SessionSource of the creating chat
    enabled              INTEGER NOT NULL DEFAULT 1,
    repeat               INTEGER,            -- runs allowed in total; NULL = no limit
    runs                 INTEGER NOT NULL DEFAULT 0,
    next_run             REAL,               -- advanced BEFORE a run starts
    run_requested_at     REAL,               -- "run now" asked (e.g. by the CLI)
    last_run             REAL,
    last_status          TEXT,               -- running | ok | error | interrupted | missed
    last_error           TEXT,
    last_delivery_status TEXT,               -- ok | partial | failed | silent | local | skipped
    last_delivery_error  TEXT,
    last_output          TEXT,
    lease_owner          TEXT,               -- the process running it now
    lease_until          REAL,
    created_at           REAL NOT NULL,
    updated_at           REAL NOT NULL
);
CREATE INDEX cron_jobs_next_run ON cron_jobs(next_run) WHERE enabled = 1;

CREATE TABLE cron_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL REFERENCES cron_jobs(id) ON DELETE CASCADE,
    trigger         TEXT NOT NULL,           -- schedule | manual | missed
    scheduled_for   REAL,
    started_at      REAL NOT NULL,
    finished_at     REAL,
    status          TEXT NOT NULL,           -- running | ok | error | interrupted | missed
    error           TEXT,
    delivery_status TEXT,
    delivery_error  TEXT,
    output_path     TEXT,
    owner           TEXT
);
CREATE INDEX cron_runs_job ON cron_runs(job_id, id);
CREATE INDEX cron_runs_running ON cron_runs(status) WHERE status = 'running';
"""

_V5_API_RESPONSES_WEBHOOKS = """
-- OpenAI Responses API (previous_response_id): each stored response keeps the chat messages it
-- added (its input, then the agent's output); a chain is rebuilt by following previous_id.
CREATE TABLE api_responses (
    id          TEXT PRIMARY KEY,
    previous_id TEXT,
    session_key TEXT NOT NULL,
    items       TEXT NOT NULL,      -- JSON list of chat-completions messages
    created_at  REAL NOT NULL
);
CREATE INDEX api_responses_created ON api_responses(created_at);

-- Webhook deliveries seen recently, so a replayed delivery id is ignored.
CREATE TABLE webhook_deliveries (
    route       TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (route, delivery_id)
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_received ON webhook_deliveries(received_at);
"""

_V6_PAIRING_APPROVALS = """
-- DM pairing (hermes_gateway.access.pairing). Codes are never stored, only a salted hash of each.
CREATE TABLE pairing_pending (
    platform    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    code_hash   TEXT NOT NULL,          -- hex PBKDF2-SHA256 of the code with salt
    salt        TEXT NOT NULL,          -- hex, random per code
    user_name   TEXT,
    chat_id     TEXT NOT NULL,          -- the DM the code was sent to (told when approved)
    chat_name   TEXT,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    PRIMARY KEY (platform, user_id)
) WITHOUT ROWID;

CREATE TABLE pairing_approved (
    platform    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    user_name   TEXT,
    chat_id     TEXT,                   -- NULL when approved by id with no request to go by
    approved_at REAL NOT NULL,
    approved_by TEXT NOT NULL,          -- tui | cli | ...
    notified    INTEGER NOT NULL DEFAULT 0,  -- the user was told in their chat
    PRIMARY KEY (platform, user_id)
) WITHOUT ROWID;

-- When each user last got a code: the per-user rate limit survives a deny or a clear.
CREATE TABLE pairing_limits (
    platform     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    last_code_at REAL NOT NULL,
    PRIMARY KEY (platform, user_id)
) WITHOUT ROWID;

-- Failed code approvals per platform; enough of them lock code approvals for a while.
CREATE TABLE pairing_lockouts (
    platform      TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL DEFAULT 0,
    first_failure REAL,
    locked_until  REAL
) WITHOUT ROWID;

-- Tool approvals (hermes_gateway.access.approvals), kept with the session they were asked in.
CREATE TABLE approval_requests (
    id           TEXT PRIMARY KEY,
    session_id   TEXT,
    session_key  TEXT NOT NULL,
    platform     TEXT NOT NULL,
    tool         TEXT NOT NULL,
    command      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    requested_at REAL NOT NULL,
    decision     TEXT,                  -- once | session | deny | timeout | cancelled
    decided_by   TEXT,
    decided_at   REAL
);
CREATE INDEX approval_requests_session ON approval_requests(session_id, requested_at);
"""

_V7_INBOX = """
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL,
    dedupe_key   TEXT,
    session_key  TEXT NOT NULL,
    event        TEXT NOT NULL,
    received_at  REAL NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'taken', 'answered', 'done')),
    session_id   TEXT,
    done_at      REAL
);
CREATE UNIQUE INDEX inbox_dedupe ON inbox(platform, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX inbox_open ON inbox(state, id) WHERE state != 'done';

-- Raw platform updates written before the platform is told they arrived (Telegram), deleted
-- once handled: what a crash leaves here is replayed at the next start.
CREATE TABLE platform_journal (
    source       TEXT NOT NULL,
    update_id    INTEGER NOT NULL,
    raw          TEXT NOT NULL,
    received_at  REAL NOT NULL,
    PRIMARY KEY (source, update_id)
);
"""

_V8_TRANSCRIPT_NOTES = """
-- What a chat's screen shows besides its messages (command invocations and replies, errors),
-- kept so that reopening a chat shows what was shown. ``anchor`` is the id of the session's
-- last message when the note was written (0 before any): a note sorts after that message,
-- and ``/undo`` drops the notes of the exchange it removes (anchor >= its first message).
CREATE TABLE transcript_notes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    anchor      INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('command', 'notice')),
    text        TEXT NOT NULL,
    meta        TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX transcript_notes_session ON transcript_notes(session_id, anchor, id);
"""

_V9_IMPORT_LEDGER = """
-- What was brought in from another program's home (``hermes import hermes-agent``): one row
-- per foreign item, so a second import skips it (and appends only what is new since).
CREATE TABLE import_ledger (
    source      TEXT NOT NULL,      -- e.g. hermes-agent:/home/me/.hermes
    kind        TEXT NOT NULL,      -- session | job | pairing | soul
    foreign_id  TEXT NOT NULL,      -- its id over there
    local_id    TEXT,               -- its id here (NULL: looked at, deliberately not imported)
    revision    TEXT,               -- how far it was read (last message id, content hash)
    imported_at REAL NOT NULL,
    PRIMARY KEY (source, kind, foreign_id)
) WITHOUT ROWID;
"""

_V10_COMMAND_RECEIPTS = """
-- Slash commands that came with a platform message id, written before the command runs, so
-- the same message delivered again (a replay after a crash: Telegram's journal, Mattermost's
-- catch-up, a resumed Discord or Slack session) is recognised and never run twice. Kept a week
-- like the inbox's done rows. ``reply`` holds the answer while it is being delivered
-- (``answered``), so one a kill cut short is delivered at the next replay instead of lost.
CREATE TABLE command_receipts (
    platform     TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL,
    command      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('running', 'answered', 'done')),
    reply        TEXT,
    received_at  REAL NOT NULL,
    PRIMARY KEY (platform, dedupe_key)
) WITHOUT ROWID;
CREATE INDEX command_receipts_age ON command_receipts(received_at);
"""

#: Every migration, in order. APPEND new ones at the end (see the module docstring).
MIGRATIONS: list[Migration] = [
    (1, _V1_SESSIONS_MESSAGES),
    (2, _V2_MESSAGES_FTS),
    (3, _V3_INPUT_HISTORY_KV),
    (4, _V4_CRON),
    (5, _V5_API_RESPONSES_WEBHOOKS),
    (6, _V6_PAIRING_APPROVALS),
    (7, _V7_INBOX),
    (8, _V8_TRANSCRIPT_NOTES),
    (9, _V9_IMPORT_LEDGER),
    (10, _V10_COMMAND_RECEIPTS),
]


def validate_migrations(migrations: Sequence[Migration]) -> None:
    """Raise ValueError unless versions are exactly 1..N in order, each with a usable step."""
    for expected, (version, step) in enumerate(migrations, start=1):
        if version != expected:
            raise ValueError(
                f"migration versions must be 1..N in order: found {version} at position "
                f"{expected} (append new migrations with the next number)"
            )
        if not (isinstance(step, str) or callable(step)):
            raise ValueError(f"migration {version}: step must be an SQL script or a callable")


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version a database has once every migration in ``migrations`` ran."""
    return migrations[-1][0] if migrations else 0


def get_user_version(conn: sqlite3.Connection) -> int:
    """Read ``PRAGMA user_version`` (0 for a new, empty database)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def split_script(script: str) -> list[str]:
    """Split an SQL script into complete statements, keeping trigger bodies whole.

    ``executescript`` cannot be used inside our transaction: it commits any pending
    transaction before it runs. ``sqlite3.complete_statement`` knows SQL quoting and
    ``CREATE TRIGGER ... BEGIN ... END;``, so cutting at each ``;`` and gluing pieces until the
    text is a complete statement is exact.
    """
    statements: list[str] = []
    *pieces, tail = script.split(";")
    buf = ""
    for piece in pieces:
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if _has_sql(buf):
                statements.append(buf.strip())
            buf = ""
    # Text after the last complete statement must be blank: every statement ends with ";".
    if _has_sql(buf + tail):
        raise ValueError(
            f"incomplete SQL statement at end of migration script: {(buf + tail)[:200]!r}"
        )
    return statements


def _has_sql(text: str) -> bool:
    """Whether ``text`` holds anything but whitespace, comments and semicolons."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace() or ch == ";":
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            return True
    return False


def apply_migrations(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    target: int | None = None,
) -> int:
    """Bring the database up to ``target`` (default: the latest), one transaction per step.

    Args:
        conn: A connection in autocommit mode (``isolation_level=None``), with a busy timeout.
        migrations: The migration list; tests pass their own.
        target: Stop after this version (tests build old databases with it).

    Returns:
        The database's version afterwards.

    Raises:
        SchemaVersionError: The database is newer than every migration known here.
        Exception: Whatever a failing step raised; that step was rolled back.
    """
    validate_migrations(migrations)
    newest = latest_version(migrations)
    goal = newest if target is None else target
    current = get_user_version(conn)
    if current > newest:
        raise SchemaVersionError(
            f"database schema version {current} is newer than this Hermes knows "
            f"(up to {newest}); upgrade Hermes or point it at another HERMES_HOME"
        )
    for version, step in migrations:
        if version <= current or version > goal:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            current = get_user_version(conn)
            if version <= current:
                conn.execute("ROLLBACK")
                continue
            if isinstance(step, str):
                for statement in split_script(step):
                    conn.execute(statement)
            else:
                step(conn)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
            current = version
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return current
