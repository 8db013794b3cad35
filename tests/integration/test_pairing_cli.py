"""``hermes pairing`` as a separate process against a gateway running in this test.

Why: the operator of a headless gateway approves from a shell, through the same database
the gateway uses. The CLI must list exactly what ``approve`` accepts, refuse a wrong code,
and the running gateway must notice the change by itself: tell the user, publish the event,
let their next message through, and shut them out at once after ``revoke``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hermes_gateway.access.events import PairingResolved
from hermes_gateway.access.pairing_gate import APPROVED_TEXT
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.pairing_harness import (
    STRANGER,
    PairingHarness,
    pairing_config,
    user_texts,
)


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[PairingHarness]:
    async with FakeTelegram() as tg:
        harness = await PairingHarness.start(pairing_config(hermes_home, fake_openai, tg), tg)
        harness.gate.sync_interval = 0.05
        yield harness
        await harness.stop()


async def hermes(home: Path, *args: str) -> tuple[int, str, str]:
    """Run ``hermes <args>`` in its own process (never blocking this loop)."""
    env = {**os.environ, "HERMES_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hermes_tui.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_cli_approves_and_revokes_while_the_gateway_runs(
    h: PairingHarness, hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    h.tg.inject_message(STRANGER, "let me in", user_id=STRANGER, first_name="Mallory")
    code = await h.code_sent_to(STRANGER)

    rc, out, _ = await hermes(hermes_home, "pairing", "list")
    assert rc == 0
    assert "hermes pairing approve <platform> <code the user received>" in out
    header, row = [line.split() for line in out.splitlines()[1:3]]
    assert header[:2] == ["PLATFORM", "USER"] and row[:3] == ["telegram", "991", "Mallory"]
    assert code not in out

    rc, _, err = await hermes(hermes_home, "pairing", "approve", "telegram", "ZZZZ2222")
    assert rc == 1 and "no waiting request on telegram has that code" in err
    rc, _, err = await hermes(hermes_home, "pairing", "approve", "telegram-x", code)
    assert rc == 2 and "unknown platform" in err
    rc, out, _ = await hermes(hermes_home, "pairing", "approve", "telegram", code)
    assert rc == 0 and out.strip() == "approved telegram user 991 (Mallory)"

    # The running gateway notices, tells the user and the bus, and lets them talk.
    await h.message_to(STRANGER, "You're in")
    assert h.texts(STRANGER)[-1] == APPROVED_TEXT
    await h.rec.wait_for(lambda: bool(h.rec.of(PairingResolved)))
    (resolved,) = h.rec.of(PairingResolved)
    assert (resolved.decision, resolved.by) == ("approved", "cli")
    h.tg.inject_message(STRANGER, "thanks", user_id=STRANGER)
    await h.answered(1)
    assert user_texts(fake_openai) == ["thanks"]

    rc, out, _ = await hermes(hermes_home, "pairing", "list")
    assert "telegram  991" in out and "cli" in out.splitlines()[-1]
    rc, out, _ = await hermes(hermes_home, "pairing", "revoke", "telegram", str(STRANGER))
    assert rc == 0 and out.startswith("revoked telegram user 991")
    h.tg.inject_message(STRANGER, "hello?", user_id=STRANGER)
    await h.message_to(STRANGER, "No new pairing code")
    assert len(fake_openai.requests) == 1
    await h.rec.wait_for(lambda: len(h.rec.of(PairingResolved)) == 2)
    assert h.rec.of(PairingResolved)[-1].decision == "revoked"
    rc, _, err = await hermes(hermes_home, "pairing", "revoke", "telegram", str(STRANGER))
    assert rc == 1 and "not an approved telegram user" in err


async def test_approve_by_user_id_and_clear_pending_from_the_cli(
    h: PairingHarness, hermes_home: Path
) -> None:
    for user in (501, 502):
        h.tg.inject_message(user, "hi", user_id=user)
        await h.code_sent_to(user)
    rc, out, _ = await hermes(hermes_home, "pairing", "approve", "telegram", "--user", "501")
    assert rc == 0 and out.startswith("approved telegram user 501")
    await h.message_to(501, "You're in")
    rc, out, _ = await hermes(hermes_home, "pairing", "clear-pending")
    assert rc == 0 and out.strip() == "dropped 1 waiting request(s)"
    await h.rec.wait_for(lambda: any(e.decision == "cleared" for e in h.rec.of(PairingResolved)))
    assert await h.gate.pending() == []
