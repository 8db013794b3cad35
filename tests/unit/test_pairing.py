"""Pairing rules on a real SQLite store with an injected clock.

Why: the limits (1 h expiry, one code per user per 10 min, 3 pending per platform, lockout
after 5 wrong codes) are the whole security story of pairing; each is pinned here at its
edge, without waiting, by moving the clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hermes_gateway.access.pairing import (
    ALPHABET,
    CODE_LENGTH,
    CodeIssued,
    CodeRefused,
    InvalidCode,
    PairingLocked,
    PairingManager,
    generate_code,
    normalize_code,
)
from hermes_gateway.models import SessionSource
from hermes_gateway.store import SessionStore

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pm(store: SessionStore, clock: Clock) -> PairingManager:
    return PairingManager(store, clock=clock)


def dm(user: str, platform: str = "telegram", name: str | None = None) -> SessionSource:
    return SessionSource(platform, user, "dm", user_id=user, user_name=name or f"user {user}")


async def issue(pm: PairingManager, user: str, platform: str = "telegram") -> str:
    outcome = await pm.request_code(dm(user, platform))
    assert isinstance(outcome, CodeIssued), outcome
    return outcome.code


def test_codes_use_the_unambiguous_alphabet() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set("01OI") & set(ALPHABET)
    codes = {generate_code() for _ in range(500)}
    assert len(codes) == 500  # 2**40 possibilities: no repeats in 500 draws
    assert all(len(c) == CODE_LENGTH == 8 and set(c) <= set(ALPHABET) for c in codes)
    assert normalize_code(" abcd-efgh ") == "ABCDEFGH"


def _database_bytes(folder: Path) -> bytes:
    """The database file with its WAL and shared-memory files, as raw bytes."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("pairing.db"))


async def test_a_code_is_stored_only_as_a_salted_hash(
    pm: PairingManager, store: SessionStore, tmp_path: Path
) -> None:
    first = await issue(pm, "41")
    second = await issue(pm, "42")

    def rows(conn):
        return conn.execute("SELECT code_hash, salt FROM pairing_pending").fetchall()

    stored = await store.read_sync(rows)
    assert len(stored) == 2 and stored[0][1] != stored[1][1]  # a salt per code
    await store.close()
    raw = _database_bytes(tmp_path)
    assert first.encode() not in raw and second.encode() not in raw


async def test_approve_by_code_lets_the_user_in(pm: PairingManager, clock: Clock) -> None:
    code = await issue(pm, "42")
    assert not await pm.is_approved("telegram", "42")
    clock.advance(60)
    user = await pm.approve_code("telegram", code.lower()[:4] + "-" + code[4:], by="cli")
    assert (user.platform, user.user_id, user.user_name, user.chat_id) == (
        "telegram",
        "42",
        "user 42",
        "42",
    )
    assert user.approved_by == "cli" and user.approved_at == T0 + 60
    assert await pm.is_approved("telegram", "42")
    assert await pm.list_pending() == []
    with pytest.raises(InvalidCode):  # a code works once
        await pm.approve_code("telegram", code, by="cli")


async def test_a_code_is_only_good_on_its_platform(pm: PairingManager) -> None:
    code = await issue(pm, "42", "telegram")
    with pytest.raises(InvalidCode):
        await pm.approve_code("discord", code, by="cli")
    assert (await pm.approve_code("telegram", code, by="cli")).user_id == "42"


async def test_codes_expire_after_an_hour(pm: PairingManager, clock: Clock) -> None:
    early = await issue(pm, "1")
    late = await issue(pm, "2")
    clock.advance(3600 - 1)
    assert (await pm.approve_code("telegram", early, by="tui")).user_id == "1"
    clock.advance(1)
    with pytest.raises(InvalidCode):
        await pm.approve_code("telegram", late, by="tui")
    assert await pm.list_pending() == []
    assert not await pm.is_approved("telegram", "2")


async def test_one_new_code_per_user_per_ten_minutes(pm: PairingManager, clock: Clock) -> None:
    await issue(pm, "42")
    again = await pm.request_code(dm("42"))
    assert again == CodeRefused("pending", retry_at=T0 + 3600)
    assert await pm.deny("telegram", "42") is not None
    clock.advance(599)
    limited = await pm.request_code(dm("42"))
    assert limited == CodeRefused("rate_limited", retry_at=T0 + 600)
    clock.advance(1)
    await issue(pm, "42")
    # Someone else is not held up by that user's limit.
    await issue(pm, "43")


async def test_at_most_three_pending_per_platform(pm: PairingManager, clock: Clock) -> None:
    for user in ("1", "2", "3"):
        await issue(pm, user)
    assert await pm.request_code(dm("4")) == CodeRefused("too_many")
    await issue(pm, "4", "discord")  # another platform has its own three
    await pm.approve_user("telegram", "2", by="tui")
    await issue(pm, "4")
    assert [p.user_id for p in await pm.list_pending("telegram")] == ["1", "3", "4"]
    clock.advance(3600)  # expired requests free their places
    await issue(pm, "5")


async def test_five_wrong_codes_lock_approval_by_code(pm: PairingManager, clock: Clock) -> None:
    code = await issue(pm, "42")
    wrong = "AAAAAAAA" if code != "AAAAAAAA" else "BBBBBBBB"
    for _ in range(4):
        with pytest.raises(InvalidCode):
            await pm.approve_code("telegram", wrong, by="cli")
    with pytest.raises(PairingLocked) as locked:
        await pm.approve_code("telegram", "not even a code", by="cli")
    assert locked.value.until == T0 + 3600
    assert await pm.locked_until("telegram") == T0 + 3600
    with pytest.raises(PairingLocked):  # the right code is refused too while locked
        await pm.approve_code("telegram", code, by="cli")
    other = await issue(pm, "7", "discord")
    assert (await pm.approve_code("discord", other, by="cli")).user_id == "7"
    clock.advance(3600)
    assert await pm.locked_until("telegram") is None
    code = await issue(pm, "43")  # the old code expired meanwhile
    assert (await pm.approve_code("telegram", code, by="cli")).user_id == "43"


async def test_picking_a_user_still_works_while_codes_are_locked(pm: PairingManager) -> None:
    await issue(pm, "42")
    for _ in range(5):
        with pytest.raises((InvalidCode, PairingLocked)):
            await pm.approve_code("telegram", "ZZZZZZZZ", by="cli")
    assert await pm.locked_until("telegram")
    assert (await pm.approve_user("telegram", "42", by="tui")).user_name == "user 42"


async def test_failures_older_than_the_window_are_forgotten(
    pm: PairingManager, clock: Clock
) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCode):
            await pm.approve_code("telegram", "ZZZZZZZZ", by="cli")
    clock.advance(3601)
    for _ in range(4):
        with pytest.raises(InvalidCode):
            await pm.approve_code("telegram", "ZZZZZZZZ", by="cli")
    assert await pm.locked_until("telegram") is None


async def test_approve_by_user_id_without_a_code(pm: PairingManager) -> None:
    lost = await pm.approve_user("telegram", " 99 ", by="tui")
    assert (lost.user_id, lost.chat_id, lost.user_name) == ("99", None, None)
    await issue(pm, "42")
    known = await pm.approve_user("telegram", "42", by="tui")
    assert (known.chat_id, known.user_name) == ("42", "user 42")
    assert {u.user_id for u in await pm.list_approved()} == {"99", "42"}
    again = await pm.approve_user("telegram", "42", by="cli")
    assert again.approved_by == "tui"  # approving twice keeps the first record


async def test_revoke_and_clear_pending(pm: PairingManager) -> None:
    await pm.approve_user("telegram", "42", by="tui")
    revoked = await pm.revoke("telegram", "42")
    assert revoked is not None and revoked.user_id == "42"
    assert not await pm.is_approved("telegram", "42")
    assert await pm.revoke("telegram", "42") is None
    await issue(pm, "1")
    await issue(pm, "2", "discord")
    assert [p.user_id for p in await pm.clear_pending("discord")] == ["2"]
    assert [p.user_id for p in await pm.clear_pending()] == ["1"]
    assert await pm.list_pending() == []


async def test_a_request_needs_a_user_id(pm: PairingManager) -> None:
    with pytest.raises(ValueError):
        await pm.request_code(SessionSource("telegram", "5", "dm"))
