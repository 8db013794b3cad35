"""The Matrix connection on a real Synapse: bad token, 429 mid-stream, homeserver restart,
the gateway killed (SIGKILL) and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.runner.busy_ack import TEXTS
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, echo_reply
from tests.matrix.conftest import MATRIX_TESTS
from tests.matrix.harness import matrix_gateway, people, shown
from tests.matrix.synapse import Synapse

pytestmark = MATRIX_TESTS

REPO = Path(__file__).resolve().parents[2]
CURSOR = "\u2589"

BUSY_TEXTS = set(TEXTS.values())


async def test_a_bad_token_is_one_clear_failure_naming_the_variable(
    hermes_home, fake_openai, synapse
):
    async with matrix_gateway(
        hermes_home, fake_openai, synapse, token="syt_not_a_real_token", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "MATRIX_ACCESS_TOKEN" in failed[0][1] and "M_UNKNOWN_TOKEN" in failed[0][1]
        assert "syt_not_a_real_token" not in failed[0][1]
        assert not [s for s in h.states() if s[0] == "reconnecting"]


async def test_a_wrong_password_names_matrix_password(hermes_home, fake_openai, synapse):
    who = await people(synapse)
    async with matrix_gateway(
        hermes_home,
        fake_openai,
        synapse,
        who=who,
        token="",
        MATRIX_ACCESS_TOKEN="",
        MATRIX_USER_ID=who.bot.user_id,
        MATRIX_PASSWORD="wrong",
        wait_connected=False,
    ) as h:
        await h.wait_state("failed")
        [failed] = [s for s in h.states() if s[0] == "failed"]
        assert "MATRIX_PASSWORD" in failed[1] and "wrong" not in failed[1]


async def test_a_password_login_works(hermes_home, fake_openai, synapse):
    who = await people(synapse)
    async with matrix_gateway(
        hermes_home,
        fake_openai,
        synapse,
        who=who,
        token="",
        MATRIX_ACCESS_TOKEN="",
        MATRIX_USER_ID=who.bot.user_id,
        MATRIX_PASSWORD=who.bot.password,
    ) as h:
        room = await h.dm()
        await h.say(room, "by password")
        assert await h.wait_answers(room, 1) == ["echo: by password"]


async def test_429_during_a_stream_ends_in_one_complete_message(hermes_home, fake_openai, synapse):
    text = "Rate limited but complete: " + " ".join(f"part{i}" for i in range(60))
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=5, delay=0.02))
    who = await people(synapse)
    async with matrix_gateway(hermes_home, fake_openai, synapse, who=who) as h:
        room = await h.dm()
        # the bot may now send one event a second (burst 1): edits at 0.1 s draw real 429s
        await synapse.limit(who.bot.user_id, 1, 1)
        try:
            await h.say(room, "go")
            assert await h.wait_answers(room, 1, timeout=30) == [text]
        finally:
            await synapse.unlimit(who.bot.user_id)
        log = (synapse.root / "homeserver.log").read_text(errors="replace")
        events = await synapse.messages(who.alice, room)
        mine = [
            e for e in events if e["sender"] == who.bot.user_id and e["type"] == "m.room.message"
        ]
        originals = [e for e in mine if "m.relates_to" not in e["content"]]
        assert len(originals) == 1  # one message; the refused calls were repeated, not doubled
        assert shown(events, who.bot.user_id) == [text]
        assert h.adapter.client.limited > 0, "Synapse answered M_LIMIT_EXCEEDED"
        del log


async def test_a_homeserver_restart_resumes_without_duplicate_or_lost_answers(
    hermes_home, fake_openai, synapse
):
    async with matrix_gateway(hermes_home, fake_openai, synapse, configure=_queue) as h:
        room = await h.dm()
        await h.say(room, "before")
        assert await h.wait_answers(room, 1) == ["echo: before"]
        await synapse.stop()
        await h.wait_state("reconnecting")
        await synapse.start()
        # written as soon as the server is back, maybe before the bot is: taken from the token
        await h.say(room, "after 1")
        await h.say(room, "after 2")
        await h.wait_state("connected")

        async def both_answered() -> bool:
            return {"after 1", "after 2"} <= set(parts(await h.shown(room)))

        await _until(both_answered, 20, "the answers after the restart")
        await h.runner.wait_idle(10)
        assert sorted(parts(await h.shown(room))) == ["after 1", "after 2", "before"]
        asked = [
            p for r in fake_openai.requests for p in r["messages"][-1]["content"].split("\n\n")
        ]
        assert sorted(asked) == ["after 1", "after 2", "before"]
        retries = [e for e in h.recorder.of(ev.PlatformStatus) if e.state == "reconnecting"]
        assert retries and any(e.retry_in for e in retries)


# --- kill -9 of the gateway process ---------------------------------------------------------


def _start(home: Path, synapse: Synapse, token: str, allowed: str, openai: FakeOpenAI) -> Any:
    (home / "config.yaml").write_text(
        "gateway:\n  busy_mode: queue\nplatforms:\n  matrix:\n    edit_interval: 0.1\n"
        "    sync_timeout: 2\n    reconnect_initial: 0.1\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HERMES_HOME": str(home),
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
        "MATRIX_HOMESERVER": synapse.url,
        "MATRIX_ACCESS_TOKEN": token,
        "MATRIX_ALLOWED_USERS": allowed,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hermes_tui.cli", "gateway", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _queue(config: Any) -> None:
    """Messages that come while a turn runs wait for it (and are taken together) instead of
    interrupting it, so every message is the last one of some model request."""
    config.gateway.busy_mode = "queue"


def parts(answers: list[str]) -> list[str]:
    """The messages an echo answered (a merged turn echoes several, blank-line separated)."""
    return [p for a in answers for p in a.removeprefix("echo: ").split("\n\n")]


async def _user_turns(home: Path) -> list[str]:
    from hermes_gateway.paths import HermesPaths

    def read() -> list[str]:
        conn = sqlite3.connect(HermesPaths(home).database)
        try:
            rows = conn.execute(
                "SELECT m.content FROM messages m JOIN sessions s ON s.id = m.session_id "
                "WHERE m.role = 'user' AND s.session_key LIKE 'matrix:%'"
            ).fetchall()
        finally:
            conn.close()
        return [str(r[0]) for r in rows]

    return await asyncio.to_thread(read)


def _log_count(home: Path, needle: str) -> int:
    log = home / "logs" / "gateway.log"
    return log.read_text(errors="replace").count(needle) if log.exists() else 0


async def _until(predicate: Any, timeout: float, what: str, home: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            log = home / "logs" / "gateway.log" if home else None
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
async def test_kill_9_of_the_gateway_loses_nothing_and_answers_once(
    hermes_home, fake_openai, synapse
):
    def slow(body: dict[str, Any]) -> ScriptedReply:
        reply = echo_reply(body)
        reply.chunk_size, reply.delay = 4, 0.05
        return reply

    fake_openai.default = slow
    who = await people(synapse)
    bot = who.bot.user_id
    first = _start(hermes_home, synapse, who.bot.token, who.alice.user_id, fake_openai)
    sent: list[tuple[str, str]] = []
    rooms: list[str] = []
    try:
        for _ in range(3):
            rooms.append(await synapse.create_room(who.alice, invite=[bot], direct=True))

        async def joined() -> bool:
            for room in rooms:
                data = await synapse.call(
                    "GET", f"/_matrix/client/v3/rooms/{room}/joined_members", who.alice.token
                )
                if bot not in data.get("joined", {}):
                    return False
            return True

        await _until(joined, 20, "the bot to join", hermes_home)
        for n in range(4):
            for i, room in enumerate(rooms):
                text = f"m{n} in {i}"
                await synapse.say(who.alice, room, text)
                sent.append((room, text))
        await fake_openai.wait_until(lambda: len(fake_openai.requests) >= 2, timeout=30)
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
    finally:
        if first.poll() is None:
            first.kill()
    for i, room in enumerate(rooms):  # written while the gateway is down
        text = f"late in {i}"
        await synapse.say(who.alice, room, text)
        sent.append((room, text))
    second = _start(hermes_home, synapse, who.bot.token, who.alice.user_id, fake_openai)
    try:

        async def all_answered() -> bool:
            for room in rooms:
                answers = await complete(room)
                expected = {t for r, t in sent if r == room}
                if not expected <= set(parts(answers)):
                    return False
            return True

        async def complete(room: str) -> list[str]:
            events = await synapse.messages(who.alice, room, limit=1000)
            # answers only: a follow-up queued behind a running turn is also told so
            return [s for s in shown(events, bot) if CURSOR not in s and s not in BUSY_TEXTS]

        await _until(all_answered, 30, "every message answered after the restart", hermes_home)
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)
    finally:
        if second.poll() is None:
            second.kill()
    # messages queued behind a running turn are taken together (busy_mode: queue)
    asked = [p for r in fake_openai.requests for p in r["messages"][-1]["content"].split("\n\n")]
    texts = [t for _, t in sent]
    assert sorted(set(asked)) == sorted(texts)  # every message reached the model
    # asked again only where the kill cut a running turn (at most one per room)
    assert len(asked) - len(set(asked)) <= len(rooms)
    # and each message stored exactly once, in one user turn
    stored = [p for text in await _user_turns(hermes_home) for p in text.split("\n\n")]
    assert sorted(stored) == sorted(texts)
    for room in rooms:
        answered = parts(await complete(room))
        assert sorted(set(answered)) == sorted(t for r, t in sent if r == room)
        # at least once, never lost: only an answer the kill cut short may show twice
        assert len(answered) - len(set(answered)) <= 1


async def test_a_restart_on_a_used_home_answers_what_came_meanwhile_once(
    used_home, fake_openai, synapse
):
    """A home with history: Matrix is added, stopped, written to while off, started again."""
    home = used_home.home_path
    who = await people(synapse)
    async with matrix_gateway(home, fake_openai, synapse, who=who, configure=_queue) as h:
        room = await h.dm()
        await h.say(room, "first")
        assert await h.wait_answers(room, 1) == ["echo: first"]
    await synapse.say(who.alice, room, "while off 1")
    await synapse.say(who.alice, room, "while off 2")
    async with matrix_gateway(home, fake_openai, synapse, who=who, configure=_queue) as h:
        h.readers[room] = who.alice
        answers = await h.wait_answers(room, 2, timeout=20)
        await h.runner.wait_idle(10)
        answers = await h.shown(room)
        # taken from the stored sync token (not skipped as history), merged or one by one
        parts = [p for a in answers for p in a.removeprefix("echo: ").split("\n\n")]
        assert sorted(parts) == ["first", "while off 1", "while off 2"]
        store = h.gateway.store
        for info in used_home.sessions[:5]:  # the home's history is still all there
            assert len(await store.get_messages(info.id)) == info.messages
    asked = [p for r in fake_openai.requests for p in r["messages"][-1]["content"].split("\n\n")]
    assert sorted(asked) == ["first", "while off 1", "while off 2"]


async def test_a_gap_longer_than_one_sync_is_filled_from_messages(
    hermes_home, fake_openai, synapse, monkeypatch
):
    """More messages came while the gateway was off than a /sync returns per room: the
    limited timeline is completed from ``/messages`` back to the stored token."""
    from hermes_gateway.platforms.matrix import adapter as matrix_adapter

    monkeypatch.setitem(matrix_adapter._FILTER["room"], "timeline", {"limit": 2})
    who = await people(synapse)
    async with matrix_gateway(hermes_home, fake_openai, synapse, who=who, configure=_queue) as h:
        room = await h.dm()
        await h.say(room, "first")
        assert await h.wait_answers(room, 1) == ["echo: first"]
    sent = [f"while off {i}" for i in range(7)]
    for text in sent:
        await synapse.say(who.alice, room, text)
    async with matrix_gateway(hermes_home, fake_openai, synapse, who=who, configure=_queue) as h:
        h.readers[room] = who.alice

        async def everything_asked() -> bool:
            asked = {
                p for r in fake_openai.requests for p in r["messages"][-1]["content"].split("\n\n")
            }
            return set(sent) <= asked

        await _until(everything_asked, 20, "every missed message to reach the model")
        await h.runner.wait_idle(10)
    asked = [p for r in fake_openai.requests for p in r["messages"][-1]["content"].split("\n\n")]
    assert sorted(asked) == sorted(["first", *sent])  # each once


async def test_asking_for_encryption_is_one_clear_failure(hermes_home, fake_openai, synapse):
    async with matrix_gateway(
        hermes_home, fake_openai, synapse, MATRIX_ENCRYPTION="true", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        [failed] = [s for s in h.states() if s[0] == "failed"]
        assert "MATRIX_E2EE_MODE" in failed[1] and "not supported" in failed[1]
