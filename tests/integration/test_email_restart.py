"""kill -9 of ``hermes gateway run`` mid-inbox, then a restart, on a used home: every mail is
answered, none twice, none lost.

The real gateway runs in a subprocess on a home with a day of history (tests/homes.py),
email enabled by EMAIL_* variables, against the session's Dovecot and this test's SMTP sink.
An inbox of mails in separate threads waits when it starts; answers come slowly; the gateway
is killed (SIGKILL) once a few answers went out and started again.
"""

# ruff: noqa: F811 (the servers are fixtures imported from the harness)

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway.paths import HermesPaths
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, echo_reply
from tests.homes import HomeManifest
from tests.integration.email_harness import (  # noqa: F401 (fixtures)
    ALICE,
    dovecot,
    dovecot_server,
    email_env,
    new_mailbox,
    sink,
)
from tests.integration.email_servers import Dovecot, SmtpSink, make_mail

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAILS = 16


def slow_echo(body: dict[str, Any]) -> ScriptedReply:
    """Answers that take a while, longer for later mails (so the kill lands mid-way)."""
    reply = echo_reply(body)
    number = re.search(r"Mail (\d+)", reply.text)
    reply.chunk_size = 6
    reply.delay = 0.02 + 0.01 * int(number.group(1) if number else 0)
    return reply


def start(home: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hermes_tui.cli", "gateway", "run"],
        env={**os.environ, "PYTHONPATH": str(REPO), "HERMES_HOME": str(home), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def inbox(home: Path) -> dict[str, int]:
    conn = sqlite3.connect(HermesPaths(home).database)
    try:
        rows = conn.execute(
            "SELECT state, COUNT(*) FROM inbox WHERE session_key LIKE 'email:%' GROUP BY state"
        ).fetchall()
        return dict(rows)
    finally:
        conn.close()


def user_turns(home: Path) -> list[str]:
    conn = sqlite3.connect(HermesPaths(home).database)
    try:
        rows = conn.execute(
            "SELECT m.content FROM messages m JOIN sessions s ON s.id = m.session_id "
            "WHERE s.session_key LIKE 'email:%' AND m.role = 'user'"
        ).fetchall()
        return [r[0] for r in rows]
    finally:
        conn.close()


async def test_kill_9_mid_inbox_answers_each_mail_once_on_a_used_home(
    used_home: HomeManifest, dovecot: Dovecot, sink: SmtpSink
) -> None:
    home = used_home.home_path
    with (home / "config.yaml").open("a") as config:
        config.write("  email:\n    tls: false\n    reconnect_initial: 0.1\n    timeout: 5\n")
    address = new_mailbox()
    ids = [f"<kill{n}.{address}>" for n in range(MAILS)]
    for n, mid in enumerate(ids):
        raw = make_mail(ALICE, address, f"Mail {n}", f"question {n}", message_id=mid)
        dovecot.deliver(address, raw)
    async with FakeOpenAI() as openai:
        openai.default = slow_echo
        env = {
            **email_env(address, dovecot, sink),
            "OPENAI_BASE_URL": openai.base_url,
            "OPENAI_API_KEY": "test-key",
            "HERMES_MODEL": "fake-model",
        }
        first = start(home, env)
        try:
            await until(lambda: len(sink.mails) >= 4 or first.poll() is not None, 30, "answers")
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 30)
        finally:
            if first.poll() is None:
                first.kill()
        at_kill = len(sink.mails)
        at_stop = inbox(home)
        assert at_kill < MAILS, "the kill came too late to test anything"

        def answered() -> set[str]:
            return set(sink.replies)

        second = start(home, env)
        try:
            await until(
                lambda: answered() >= set(ids) and not set(inbox(home)) - {"done"},
                60,
                "every mail answered after the restart",
            )
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 30)
        finally:
            if second.poll() is None:
                second.kill()
    replies = [m["In-Reply-To"] for m in sink.mails]
    duplicates = len(replies) - len(set(replies))
    print(f"kill -9 after {at_kill} answers; inbox at the kill {at_stop}; repeats {duplicates}")
    assert set(replies) == set(ids)
    # The only repeat possible: an answer the SMTP server took just before the kill, before
    # the gateway could record it; it is the same mail (same Message-ID), shown once.
    assert duplicates <= at_stop.get("answered", 0)
    for mid in ids:
        assert len({m["Message-ID"] for m in sink.mails if m["In-Reply-To"] == mid}) == 1
    turns = user_turns(home)
    assert sorted(turns) == sorted(f"[Subject: Mail {n}]\n\nquestion {n}" for n in range(MAILS))
    seen = dovecot.seen(address)
    assert all(seen[mid] for mid in ids)
    # The used home's history is still there.
    conn = sqlite3.connect(HermesPaths(home).database)
    try:
        keys = {r[0] for r in conn.execute("SELECT DISTINCT session_key FROM sessions")}
    finally:
        conn.close()
    assert set(used_home.chats) <= keys
