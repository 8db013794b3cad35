"""DM pairing: how a stranger gets in, with the operator's consent, and nothing else.

Someone who is on no allowlist writes to the bot in a DM. Instead of silence they get a
pairing code; the operator approves it (TUI dialog, Pairing screen or ``hermes pairing
approve``) and from then on that user's messages reach the agent. This module keeps the
state in SQLite so the gateway and the ``hermes pairing`` CLI (another process) share it:

* a code is 8 characters from a 32-character alphabet without look-alikes (no 0/O/1/I),
  drawn with :mod:`secrets`. Only a salted PBKDF2 hash is stored: whoever reads the
  database (a backup, a copied folder) learns no code. The iteration count is modest on
  purpose: a code lives for an hour and is one of 2**40, and anyone who can write the
  database can approve themselves anyway; the hash only has to keep codes out of copies;
* a code expires after an hour; a user gets at most one new code per 10 minutes; at most 3
  codes wait per platform (so a flood of strangers cannot bury the operator in requests);
* 5 wrong codes lock approval *by code* on that platform for an hour (guessing needs many
  tries; approving a person picked from the list cannot be guessed, so it stays open);
* the clock is injectable, so the limits are tested without waiting.

Every operation is one short function over a ``sqlite3.Connection`` run in one transaction
on the store's thread (:meth:`SessionStore.write_sync`), so a limit can never be raced by a
second process. Nothing here logs a code; user ids are logged only through
:func:`hermes_gateway.access.policy.hash_id`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hermes_gateway.models import SessionSource
from hermes_gateway.store import SessionStore

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "ApprovedUser",
    "CodeIssued",
    "CodeRefused",
    "InvalidCode",
    "PairingError",
    "PairingLimits",
    "PairingLocked",
    "PairingManager",
    "PendingPairing",
    "generate_code",
    "hash_code",
    "import_approved",
    "normalize_code",
]

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""32 symbols that cannot be misread for one another: no 0/O, no 1/I."""
CODE_LENGTH = 8
HASH_ITERATIONS = 20_000

Clock = Callable[[], float]


@dataclass(frozen=True)
class PairingLimits:
    """The pairing rules; tests shrink nothing, they move an injected clock instead."""

    code_ttl: float = 3600.0
    """Seconds a code stays valid."""
    user_interval: float = 600.0
    """At most one new code per user in this many seconds."""
    max_pending: int = 3
    """Codes that may wait for the operator at once, per platform."""
    max_failures: int = 5
    """Wrong codes (per platform) that lock approval by code."""
    lockout: float = 3600.0
    """Seconds approval by code stays locked after too many wrong codes."""


@dataclass(frozen=True)
class PendingPairing:
    """A code that was sent and waits for the operator."""

    platform: str
    user_id: str
    user_name: str | None
    chat_id: str
    chat_name: str | None
    created_at: float
    expires_at: float

    @property
    def display_name(self) -> str:
        return self.user_name or self.user_id


@dataclass(frozen=True)
class ApprovedUser:
    """Someone the operator let in."""

    platform: str
    user_id: str
    user_name: str | None
    chat_id: str | None
    approved_at: float
    approved_by: str
    notified: bool = False

    @property
    def display_name(self) -> str:
        return self.user_name or self.user_id


@dataclass(frozen=True)
class CodeIssued:
    """A new code for the user; ``code`` is the only copy there will ever be."""

    request: PendingPairing
    code: str = field(repr=False)


RefusalReason = Literal["pending", "rate_limited", "too_many"]


@dataclass(frozen=True)
class CodeRefused:
    """No new code: one is still pending, the user asked too recently, or too many wait.

    ``retry_at`` is when asking again can help (the pending code's expiry, the end of the
    rate-limit window), or None when that depends on the operator.
    """

    reason: RefusalReason
    retry_at: float | None = None


class PairingError(Exception):
    """An approval that cannot be done; the message is meant for the operator."""


class InvalidCode(PairingError):
    """No waiting request on that platform has this code (or it expired)."""


class PairingLocked(PairingError):
    """Too many wrong codes: approval by code on this platform is locked until ``until``."""

    def __init__(self, platform: str, until: float, now: float) -> None:
        minutes = max(1, round((until - now) / 60))
        super().__init__(
            f"too many wrong codes: approval by code on {platform} is locked for "
            f"{minutes} more min (approving a listed user still works)"
        )
        self.platform, self.until = platform, until


# --- codes ---------------------------------------------------------------------------------


def generate_code(length: int = CODE_LENGTH) -> str:
    """A fresh random code from :data:`ALPHABET`."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalize_code(text: str) -> str:
    """What the operator typed, as a code: upper case, spaces and dashes dropped."""
    return "".join(ch for ch in text.upper() if ch not in " -_\t")


def hash_code(code: str, salt: bytes) -> str:
    """The stored form of a code (hex PBKDF2-SHA256)."""
    return hashlib.pbkdf2_hmac("sha256", code.encode(), salt, HASH_ITERATIONS).hex()


def _code_matches(code: str, salt_hex: str, stored: str) -> bool:
    return hmac.compare_digest(hash_code(code, bytes.fromhex(salt_hex)), stored)


def _well_formed(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(ch in ALPHABET for ch in code)


# --- SQL (run on the store's thread, each function inside one transaction) -----------------

_PENDING_COLUMNS = "platform, user_id, user_name, chat_id, chat_name, created_at, expires_at"
_APPROVED_COLUMNS = "platform, user_id, user_name, chat_id, approved_at, approved_by, notified"


def _pending(row: tuple[Any, ...]) -> PendingPairing:
    return PendingPairing(*row)


def _approved(row: tuple[Any, ...]) -> ApprovedUser:
    platform, user_id, user_name, chat_id, approved_at, approved_by, notified = row
    return ApprovedUser(
        platform, user_id, user_name, chat_id, approved_at, approved_by, notified=bool(notified)
    )


def _purge(conn: sqlite3.Connection, now: float) -> list[PendingPairing]:
    rows = conn.execute(
        f"SELECT {_PENDING_COLUMNS} FROM pairing_pending WHERE expires_at <= ?", (now,)
    ).fetchall()
    if rows:
        conn.execute("DELETE FROM pairing_pending WHERE expires_at <= ?", (now,))
    return [_pending(r) for r in rows]


def _tx_request(
    conn: sqlite3.Connection,
    source: SessionSource,
    now: float,
    limits: PairingLimits,
    new_code: Callable[[], str],
) -> CodeIssued | CodeRefused:
    _purge(conn, now)
    platform, user = source.platform, source.user_id or ""
    row = conn.execute(
        "SELECT expires_at FROM pairing_pending WHERE platform = ? AND user_id = ?",
        (platform, user),
    ).fetchone()
    if row is not None:
        return CodeRefused("pending", retry_at=row[0])
    row = conn.execute(
        "SELECT last_code_at FROM pairing_limits WHERE platform = ? AND user_id = ?",
        (platform, user),
    ).fetchone()
    if row is not None and now - row[0] < limits.user_interval:
        return CodeRefused("rate_limited", retry_at=row[0] + limits.user_interval)
    (waiting,) = conn.execute(
        "SELECT COUNT(*) FROM pairing_pending WHERE platform = ?", (platform,)
    ).fetchone()
    if waiting >= limits.max_pending:
        return CodeRefused("too_many")
    code = new_code()
    salt = secrets.token_bytes(16)
    request = PendingPairing(
        platform=platform,
        user_id=user,
        user_name=source.user_name,
        chat_id=source.chat_id,
        chat_name=source.chat_name,
        created_at=now,
        expires_at=now + limits.code_ttl,
    )
    conn.execute(
        f"INSERT INTO pairing_pending ({_PENDING_COLUMNS}, code_hash, salt) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            platform,
            user,
            request.user_name,
            request.chat_id,
            request.chat_name,
            now,
            request.expires_at,
            hash_code(code, salt),
            salt.hex(),
        ),
    )
    conn.execute(
        "INSERT INTO pairing_limits (platform, user_id, last_code_at) VALUES (?, ?, ?) "
        "ON CONFLICT (platform, user_id) DO UPDATE SET last_code_at = excluded.last_code_at",
        (platform, user, now),
    )
    return CodeIssued(request, code)


def _approve_row(
    conn: sqlite3.Connection,
    platform: str,
    user_id: str,
    user_name: str | None,
    chat_id: str | None,
    now: float,
    by: str,
) -> ApprovedUser:
    existing = conn.execute(
        f"SELECT {_APPROVED_COLUMNS} FROM pairing_approved WHERE platform = ? AND user_id = ?",
        (platform, user_id),
    ).fetchone()
    conn.execute(
        "DELETE FROM pairing_pending WHERE platform = ? AND user_id = ?", (platform, user_id)
    )
    if existing is not None:
        return _approved(existing)
    conn.execute(
        f"INSERT INTO pairing_approved ({_APPROVED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0)",
        (platform, user_id, user_name, chat_id, now, by),
    )
    return ApprovedUser(platform, user_id, user_name, chat_id, now, by, notified=False)


_LockState = tuple[int, float | None, float | None]


def _lock_state(conn: sqlite3.Connection, platform: str) -> _LockState:
    row = conn.execute(
        "SELECT failures, first_failure, locked_until FROM pairing_lockouts WHERE platform = ?",
        (platform,),
    ).fetchone()
    return (0, None, None) if row is None else (row[0], row[1], row[2])


def _save_lock(conn: sqlite3.Connection, platform: str, state: _LockState) -> None:
    conn.execute(
        "INSERT INTO pairing_lockouts (platform, failures, first_failure, locked_until) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (platform) DO UPDATE SET failures = excluded.failures, "
        "first_failure = excluded.first_failure, locked_until = excluded.locked_until",
        (platform, *state),
    )


def _tx_approve_code(
    conn: sqlite3.Connection, platform: str, code: str, now: float, by: str, limits: PairingLimits
) -> ApprovedUser | float | None:
    """The approved user; or the lock's end (locked); or None (wrong code, counted).

    Never raises for a wrong code: the failure count must be committed, and raising would
    roll it back.
    """
    _purge(conn, now)
    failures, first, locked_until = _lock_state(conn, platform)
    if locked_until is not None and locked_until > now:
        return locked_until
    if _well_formed(code):
        rows = conn.execute(
            f"SELECT {_PENDING_COLUMNS}, salt, code_hash FROM pairing_pending WHERE platform = ?",
            (platform,),
        ).fetchall()
        for row in rows:
            *fields, salt, stored = row
            if _code_matches(code, salt, stored):
                request = _pending(tuple(fields))
                _save_lock(conn, platform, (0, None, None))
                return _approve_row(
                    conn, platform, request.user_id, request.user_name, request.chat_id, now, by
                )
    if first is None or now - first > limits.lockout:
        failures, first = 0, now
    failures += 1
    if failures >= limits.max_failures:
        _save_lock(conn, platform, (0, None, now + limits.lockout))
        return now + limits.lockout
    _save_lock(conn, platform, (failures, first, None))
    return None


def _tx_approve_user(
    conn: sqlite3.Connection, platform: str, user_id: str, now: float, by: str
) -> ApprovedUser:
    _purge(conn, now)
    row = conn.execute(
        f"SELECT {_PENDING_COLUMNS} FROM pairing_pending WHERE platform = ? AND user_id = ?",
        (platform, user_id),
    ).fetchone()
    name: str | None
    chat: str | None
    if row is not None:
        request = _pending(row)
        name, chat = request.user_name, request.chat_id
    else:  # no code to go by: a DM they had before (approved once, then revoked) if any
        known = conn.execute(
            "SELECT chat_id, display_name FROM sessions WHERE platform = ? AND user_id = ? "
            "AND chat_type = 'dm' ORDER BY updated_at DESC LIMIT 1",
            (platform, user_id),
        ).fetchone()
        chat, name = (known[0], known[1]) if known is not None else (None, None)
    return _approve_row(conn, platform, user_id, name, chat, now, by)


def _tx_take_pending(
    conn: sqlite3.Connection, platform: str | None, user_id: str | None, now: float
) -> list[PendingPairing]:
    _purge(conn, now)
    where, params = _where(platform, user_id)
    rows = conn.execute(f"SELECT {_PENDING_COLUMNS} FROM pairing_pending{where}", params).fetchall()
    conn.execute(f"DELETE FROM pairing_pending{where}", params)
    return [_pending(r) for r in rows]


def _tx_revoke(conn: sqlite3.Connection, platform: str, user_id: str) -> ApprovedUser | None:
    row = conn.execute(
        f"SELECT {_APPROVED_COLUMNS} FROM pairing_approved WHERE platform = ? AND user_id = ?",
        (platform, user_id),
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "DELETE FROM pairing_approved WHERE platform = ? AND user_id = ?", (platform, user_id)
    )
    return _approved(row)


def _where(platform: str | None, user_id: str | None) -> tuple[str, tuple[str, ...]]:
    clauses, params = [], []
    if platform is not None:
        clauses.append("platform = ?")
        params.append(platform)
    if user_id is not None:
        clauses.append("user_id = ?")
        params.append(user_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _list_pending(
    conn: sqlite3.Connection, platform: str | None, now: float
) -> list[PendingPairing]:
    where, params = _where(platform, None)
    joiner = " AND " if where else " WHERE "
    rows = conn.execute(
        f"SELECT {_PENDING_COLUMNS} FROM pairing_pending{where}{joiner}expires_at > ? "
        "ORDER BY created_at",
        (*params, now),
    ).fetchall()
    return [_pending(r) for r in rows]


def _list_approved(conn: sqlite3.Connection, platform: str | None) -> list[ApprovedUser]:
    where, params = _where(platform, None)
    rows = conn.execute(
        f"SELECT {_APPROVED_COLUMNS} FROM pairing_approved{where} ORDER BY approved_at", params
    ).fetchall()
    return [_approved(r) for r in rows]


def _is_approved(conn: sqlite3.Connection, platform: str, user_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pairing_approved WHERE platform = ? AND user_id = ?", (platform, user_id)
    ).fetchone()
    return row is not None


def _exec(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    conn.execute(sql, params)


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _locked_until(conn: sqlite3.Connection, platform: str) -> float | None:
    return _lock_state(conn, platform)[2]


# --- the manager ---------------------------------------------------------------------------


class PairingManager:
    """Pairing state over one :class:`SessionStore` (the gateway's or the CLI's).

    Args:
        store: The open store; pairing tables come with its migrations.
        clock: Wall-clock seconds; tests pass a controllable one.
        limits: The rules (defaults: 1 h codes, 10 min per user, 3 pending, 5 tries).
        new_code: Draws a code; only tests that need a known code replace it.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        clock: Clock = time.time,
        limits: PairingLimits | None = None,
        new_code: Callable[[], str] = generate_code,
    ) -> None:
        self.store = store
        self.clock = clock
        self.limits = limits or PairingLimits()
        self.new_code = new_code

    async def request_code(self, source: SessionSource) -> CodeIssued | CodeRefused:
        """A new code for the DM's sender, or why none can be issued now."""
        if not source.user_id:
            raise ValueError("a pairing request needs the sender's user id")
        return await self.store.write_sync(
            _tx_request, source, self.clock(), self.limits, self.new_code
        )

    async def approve_code(self, platform: str, code: str, *, by: str) -> ApprovedUser:
        """Approve whoever was sent ``code`` on ``platform``.

        Raises:
            InvalidCode: No waiting request has that code (counts towards the lockout).
            PairingLocked: Too many wrong codes recently; nothing was checked.
        """
        now = self.clock()
        normalized = normalize_code(code)
        result = await self.store.write_sync(
            _tx_approve_code, platform, normalized, now, by, self.limits
        )
        if isinstance(result, ApprovedUser):
            return result
        if result is not None:
            raise PairingLocked(platform, result, now)
        raise InvalidCode(f"no waiting request on {platform} has that code (or it expired)")

    async def approve_user(self, platform: str, user_id: str, *, by: str) -> ApprovedUser:
        """Let ``user_id`` in, with or without a waiting request (the code got lost)."""
        user_id = user_id.strip()
        if not user_id:
            raise PairingError("a user id is needed")
        return await self.store.write_sync(_tx_approve_user, platform, user_id, self.clock(), by)

    async def deny(self, platform: str, user_id: str) -> PendingPairing | None:
        """Drop a waiting request (the per-user rate limit still applies)."""
        taken = await self.store.write_sync(_tx_take_pending, platform, user_id, self.clock())
        return taken[0] if taken else None

    async def clear_pending(self, platform: str | None = None) -> list[PendingPairing]:
        """Drop every waiting request (of one platform, or all); returns what was dropped."""
        return await self.store.write_sync(_tx_take_pending, platform, None, self.clock())

    async def revoke(self, platform: str, user_id: str) -> ApprovedUser | None:
        """Shut an approved user out again; None if they were not approved."""
        return await self.store.write_sync(_tx_revoke, platform, user_id)

    async def purge_expired(self) -> list[PendingPairing]:
        """Delete requests whose code expired and return them."""
        return await self.store.write_sync(_purge, self.clock())

    async def list_pending(self, platform: str | None = None) -> list[PendingPairing]:
        return await self.store.read_sync(_list_pending, platform, self.clock())

    async def list_approved(self, platform: str | None = None) -> list[ApprovedUser]:
        return await self.store.read_sync(_list_approved, platform)

    async def is_approved(self, platform: str, user_id: str) -> bool:
        return await self.store.read_sync(_is_approved, platform, user_id)

    async def locked_until(self, platform: str) -> float | None:
        """When approval by code unlocks on ``platform`` (None or past: not locked)."""
        until = await self.store.read_sync(_locked_until, platform)
        return until if until is not None and until > self.clock() else None

    async def mark_notified(self, platform: str, user_id: str) -> None:
        await self.store.write_sync(
            _exec,
            "UPDATE pairing_approved SET notified = 1 WHERE platform = ? AND user_id = ?",
            (platform, user_id),
        )

    async def data_version(self) -> int:
        """SQLite's ``data_version``: changes when *another* connection commits."""
        return await self.store.read_sync(_data_version)


def import_approved(
    conn: sqlite3.Connection,
    platform: str,
    user_id: str,
    user_name: str | None,
    approved_at: float,
    by: str,
) -> bool:
    """Add an approval made elsewhere (Hermes Agent), inside the caller's transaction.

    The user was told there already, so the row is marked notified. An approval that exists
    here is kept as it is. Returns whether a row was added.
    """
    cur = conn.execute(
        f"INSERT INTO pairing_approved ({_APPROVED_COLUMNS}) VALUES (?, ?, ?, NULL, ?, ?, 1) "
        "ON CONFLICT (platform, user_id) DO NOTHING",
        (platform, user_id, user_name, approved_at, by),
    )
    return cur.rowcount > 0
