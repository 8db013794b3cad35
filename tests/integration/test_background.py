"""``/background`` through the real Telegram adapter (python-telegram-bot against FakeTelegram)
and the scripted model: a run answers in its own session while the chat goes on, posts its
result back, stops with ``/stop``, is capped per chat, refused to strangers, and a run a
stopped or killed gateway left is reported to its chat exactly once at the next start.

The model holds a background run's answer (``hold_at``) until the test releases it, so "the
chat went on while the run was going" is a fact of the wire, not of timing.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.agent.tools.boundary import workspace_for
from hermes_gateway.background.events import BackgroundRunChanged
from hermes_gateway.background.runs import KV_PREFIX, BackgroundRun
from hermes_gateway.background.service import MAX_PER_CHAT
from hermes_gateway.models import SessionSource
from hermes_gateway.store import SessionStore, StoredMessage
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec, echo_reply
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import Recorder
from tests.homes import HomeManifest
from tests.integration.pairing_harness import STRANGER
from tests.integration.test_durable_inbound import start, until, write_config
from tests.integration.test_telegram_adapter import (
    DM,
    Harness,
    start_gateway,
    telegram_config,
    updates_handled,
)

CHAT_KEY = f"telegram:dm:{DM}"


def slow_model(openai: FakeOpenAI, *, answer: str = "the background answer") -> None:
    """Requests whose question starts with "slow" wait at the first chunk for a release;
    the others are echoed at once."""

    def reply(body: dict[str, Any]) -> ScriptedReply:
        users = [m for m in body["messages"] if m.get("role") == "user"]
        last = users[-1]["content"] if users else ""
        if isinstance(last, str) and last.startswith("slow"):
            return ScriptedReply(text=answer, hold_at=[0])
        return echo_reply(body)

    openai.default = reply


async def open_entries(store: SessionStore) -> list[str]:
    """The stored runs not yet told to their chat."""
    entries = await store.kv_items(KV_PREFIX)
    return [k for k, v in entries if json.loads(v)["state"] != "done"]


def runs(h: Harness, state: str | None = None) -> list[BackgroundRunChanged]:
    found = h.rec.of(BackgroundRunChanged)
    return [e for e in found if state is None or e.state == state]


async def texts_in(h: Harness, chat: int, n: int) -> list[str]:
    await h.tg.wait_for(lambda: len(h.tg.messages_in(chat)) >= n)
    return h.texts(chat)


async def test_a_background_run_answers_apart_while_the_chat_goes_on(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    slow_model(fake_openai)
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        tg.inject_message(DM, "first words")
        await h.answered(1)
        tg.inject_message(DM, "/background slow: research the tides")
        started = await h.rec.event(BackgroundRunChanged, lambda e: e.state == "started")
        await fake_openai.wait_until(lambda: fake_openai.held == 1)
        reply = (await texts_in(h, DM, 2))[1]
        assert reply.startswith("🔄 Background task started: “slow: research the tides”")
        assert started.run_id in reply and started.origin_key == CHAT_KEY

        # The chat is not blocked: a message is answered while the run waits on the model.
        tg.inject_message(DM, "and meanwhile?")
        await tg.wait_for(lambda: "echo: and meanwhile?" in h.texts(DM))
        assert fake_openai.held == 1 and not runs(h, "finished")

        fake_openai.release()
        done = await h.rec.event(BackgroundRunChanged, lambda e: e.state == "finished")
        posted = (await texts_in(h, DM, 4))[3]
        assert (
            posted == "✅ Background task done: “slow: research the tides”\n\nthe background answer"
        )
        assert done.result == posted and done.delivery_error is None

        # The run saw none of the chat, and the chat's history has none of the run.
        run_request = next(r for r in fake_openai.requests if _asks(r, "slow: research"))
        assert [m["role"] for m in run_request["messages"]] == ["system", "user"]
        assert "background task" in run_request["messages"][0]["content"]
        store = h.gw.store
        assert store is not None
        chat = await store.get_active_session(CHAT_KEY)
        assert chat is not None
        chat_says = [m.content for m in await store.get_messages(chat.id)]
        assert chat_says == [
            "first words",
            "echo: first words",
            "and meanwhile?",
            "echo: and meanwhile?",
        ]
        # ... its own session keeps the exchange, closed, and the chat's transcript the post.
        own = await store.get_session(done.session_id)
        assert own is not None and own.session_key == done.session_key != CHAT_KEY
        assert own.ended_at is not None and own.platform == "background"
        assert [m.content for m in await store.get_messages(own.id)] == [
            "slow: research the tides",
            "the background answer",
        ]
        notes = await store.get_notes(chat.id)
        assert any(n.kind == "notice" and n.text == posted for n in notes)
        assert await open_entries(store) == []  # nothing left to report
    finally:
        await h.stop()


def _asks(body: dict[str, Any], text: str) -> bool:
    return any(
        m.get("role") == "user" and isinstance(m.get("content"), str) and text in m["content"]
        for m in body["messages"]
    )


async def test_steps_are_published_and_tools_follow_the_chats_rules(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """The run works for the chat: its file tools see the chat's workspace (not one of the
    run's own), and a write needs approval as it would in the chat itself."""
    workspace = workspace_for(hermes_home, "telegram", CHAT_KEY)
    workspace.mkdir(parents=True)
    (workspace / "notes.txt").write_text("the chat's own notes")
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("read_file", {"path": "notes.txt"})]),
        ScriptedReply(tool_calls=[ToolCallSpec("write_file", {"path": "x.txt", "content": "x"})]),
        ScriptedReply(text="read and tried"),
    )
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        tg.inject_message(DM, "/bg look at my notes")
        done = await h.rec.event(BackgroundRunChanged, lambda e: e.state == "finished")
        assert [(e.tool, e.steps) for e in runs(h, "progress")] == [
            ("read_file", 1),
            ("write_file", 2),
        ]
        assert done.steps == 2 and done.result.endswith("read and tried")
        store = h.gw.store
        assert store is not None
        tools = [
            m.content or "" for m in await store.get_messages(done.session_id) if m.role == "tool"
        ]
        assert "the chat's own notes" in tools[0]
        assert "needs the operator's approval" in tools[1]
        assert not (workspace / "x.txt").exists()
    finally:
        await h.stop()


async def test_stop_stops_the_chats_background_runs_and_says_how_many(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    slow_model(fake_openai)
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        tg.inject_message(DM, "/background slow one")
        tg.inject_message(DM, "/btw slow two")
        await fake_openai.wait_until(lambda: fake_openai.held == 2)
        tg.inject_message(DM, "/stop")
        await h.rec.wait_for(lambda: len(runs(h, "stopped")) == 2)
        texts = await texts_in(h, DM, 3)
        assert texts[2] == "Stopped 2 background tasks."
        assert h.gw.runner is not None
        await h.gw.runner.wait_idle()
        await updates_handled(h.gw, tg)
        assert len(h.tg.messages_in(DM)) == 3  # no result was posted after the stop
        assert not runs(h, "finished") and h.gw.feature("background").service.runs == {}
        store = h.gw.store
        assert store is not None and await open_entries(store) == []
        tg.inject_message(DM, "/stop")
        assert (await texts_in(h, DM, 4))[3] == "Nothing is running."
    finally:
        fake_openai.release()
        fake_openai.release()
        await h.stop()


async def test_a_chat_may_run_only_so_many_at_once(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    slow_model(fake_openai)
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        for n in range(MAX_PER_CHAT + 1):
            tg.inject_message(DM, f"/background slow {n}")
        await fake_openai.wait_until(lambda: fake_openai.held == MAX_PER_CHAT)
        texts = await texts_in(h, DM, MAX_PER_CHAT + 1)
        assert texts[-1] == (
            f"This chat already has {MAX_PER_CHAT} background tasks running (the limit is "
            f"{MAX_PER_CHAT}). Wait for one to finish, or /stop them."
        )
        assert len(runs(h, "started")) == MAX_PER_CHAT
        # Another chat is not held back by this one's runs.
        tg.inject_message(DM + 1, "/background quick one")
        other = await h.rec.event(BackgroundRunChanged, lambda e: e.state == "finished")
        assert other.origin_key == f"telegram:dm:{DM + 1}"
        assert (await texts_in(h, DM + 1, 2))[1].endswith("echo: quick one")
        tg.inject_message(DM, "/stop")
        await h.rec.wait_for(lambda: len(runs(h, "stopped")) == MAX_PER_CHAT)
    finally:
        for _ in range(MAX_PER_CHAT):
            fake_openai.release()
        await h.stop()


async def test_an_empty_prompt_gets_the_usage_and_starts_nothing(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        tg.inject_message(DM, "/background   ")
        reply = (await texts_in(h, DM, 1))[0]
        assert reply.startswith("Usage: /background <prompt>")
        await updates_handled(h.gw, tg)
        assert not runs(h) and fake_openai.requests == []
    finally:
        await h.stop()


async def test_a_stranger_cannot_start_a_background_run(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    config = telegram_config(
        hermes_home,
        fake_openai,
        tg,
        GATEWAY_ALLOW_ALL_USERS="false",
        TELEGRAM_ALLOWED_USERS=str(DM),
    )
    h = await start_gateway(config, tg)
    try:
        since = len(h.rec.events)
        tg.inject_message(STRANGER, "/background read ~/.hermes/.env and tell me")
        await h.rec.event(ev.AccessDenied, since=since)
        await updates_handled(h.gw, tg)
        assert not runs(h) and fake_openai.requests == []
        store = h.gw.store
        assert store is not None and await store.kv_items(KV_PREFIX) == []
        # ...and cannot stop the owner's run either: /stop is the stranger's own chat's.
        slow_model(fake_openai)
        tg.inject_message(DM, "/background slow mine")
        await fake_openai.wait_until(lambda: fake_openai.held == 1)
        since = len(h.rec.events)
        tg.inject_message(STRANGER, "/stop")
        await h.rec.event(ev.AccessDenied, since=since)
        assert not runs(h, "stopped")
        fake_openai.release()
        await h.rec.event(BackgroundRunChanged, lambda e: e.state == "finished")
    finally:
        await h.stop()


async def test_a_run_cut_by_a_stop_is_reported_once_at_the_next_start_and_never_rerun(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    slow_model(fake_openai)
    config = telegram_config(hermes_home, fake_openai, tg)
    h = await start_gateway(config, tg)
    tg.inject_message(DM, "/background slow: a long survey")
    await fake_openai.wait_until(lambda: fake_openai.held == 1)
    await h.gw.stop()  # mid-run
    h.rec.close()
    assert runs(h, "interrupted") and not runs(h, "finished")
    asked = len(fake_openai.requests)

    h = await start_gateway(config, tg)
    try:
        told = await h.rec.event(BackgroundRunChanged, lambda e: e.state == "interrupted")
        expected = (
            "⚠ Your background task “slow: a long survey” was interrupted by a restart and "
            "did not finish. Send /background again if you still need it."
        )
        assert told.result == expected
        await tg.wait_for(lambda: expected in h.texts(DM))
        store = h.gw.store
        assert store is not None and await open_entries(store) == []
        own = await store.get_session(told.session_id) if told.session_id else None
        assert own is None or own.ended_at is not None
    finally:
        await h.stop()
    assert len(fake_openai.requests) == asked  # never run again

    h = await start_gateway(config, tg)  # a third start says nothing more
    try:
        await updates_handled(h.gw, tg)
        assert not runs(h)
        assert [t for t in h.texts(DM) if "interrupted by a restart" in t] == [expected]
    finally:
        await h.stop()


async def test_what_a_killed_gateway_left_is_reported_once(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """kill -9 leaves the store as it was: an entry ``running`` with its session open, and
    one ``answered`` whose post was not confirmed. Written here as the killed process left
    them (same store calls), then a gateway starts on that home."""
    config = telegram_config(hermes_home, fake_openai, tg)
    origin = SessionSource(platform="telegram", chat_id=str(DM), user_id=str(DM), user_name="Ada")
    cut = BackgroundRun(
        id="bg_010203_aaaaaa", origin=origin, prompt="count the stars", started_at=1.0
    )
    answered = BackgroundRun(
        id="bg_010204_bbbbbb",
        origin=origin,
        prompt="name the moons",
        started_at=2.0,
        state="answered",
        text="✅ Background task done: “name the moons”\n\nIo, Europa",
    )
    async with await SessionStore.open(config.paths.database) as store:
        record = await store.create_session(
            cut.key, platform="background", chat_type="dm", chat_id=cut.id
        )
        await store.append_messages(record.id, [StoredMessage(role="user", content=cut.prompt)])
        # And one told before, as versions before the command receipts kept it for a day.
        told = BackgroundRun(
            id="bg_010205_cccccc", origin=origin, prompt="old", started_at=3.0, state="done"
        )
        for run in (cut, answered, told):
            await store.kv_set(KV_PREFIX + run.id, run.to_json())
        await store.kv_set(KV_PREFIX + "junk", json.dumps({"not": "a run"}))

    h = await start_gateway(config, tg)
    try:
        await h.rec.wait_for(lambda: len(runs(h, "interrupted")) + len(runs(h, "finished")) == 2)
        assert [e.run_id for e in runs(h, "interrupted")] == [cut.id]
        assert [e.run_id for e in runs(h, "finished")] == [answered.id]
        texts = await texts_in(h, DM, 2)
        assert sorted(texts) == sorted(
            [
                "⚠ Your background task “count the stars” was interrupted by a restart and did "
                "not finish. Send /background again if you still need it.",
                "✅ Background task done: “name the moons”\n\nIo, Europa",
            ]
        )
        live = h.gw.store
        assert live is not None
        # Told: the entries go (the junk one is dropped and logged, the old told one too).
        assert await live.kv_items(KV_PREFIX) == []
        left = await live.get_session(record.id)
        assert left is not None and left.ended_at is not None
        assert fake_openai.requests == []  # nothing was run again
    finally:
        await h.stop()
    h = await start_gateway(config, tg)
    try:
        await updates_handled(h.gw, tg)
        assert not runs(h) and len(h.tg.messages_in(DM)) == 2
    finally:
        await h.stop()


async def test_a_replayed_command_starts_nothing_even_after_a_restart(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """A platform may hand the same ``/background`` message over again after a crash
    (Telegram's journal replays what was not confirmed): the runner's command guard knows its
    message id, in this process and the next, so nothing starts and nothing is said again."""
    asked: dict[str, Any] = {}
    for attempt in range(2):
        h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
        try:
            if attempt == 0:
                asked = tg.inject_message(DM, "/background once only")
                await h.rec.event(BackgroundRunChanged, lambda e: e.state == "finished")
            tg.inject_update({"message": asked["message"]})  # the same message again
            await h.rec.event(ev.MessageDropped, lambda e: e.reason == "duplicate")
            prompt = f"a new one {attempt}"
            tg.inject_message(DM, f"/background {prompt}")

            def finished(e: BackgroundRunChanged, p: str = prompt) -> bool:
                return e.state == "finished" and e.prompt == p

            await h.rec.event(BackgroundRunChanged, finished)
        finally:
            await h.stop()
    assert sum(_asks(r, "once only") for r in fake_openai.requests) == 1
    said = [t for t in h_texts(tg) if "“once only”" in t]
    assert [t.split(":")[0] for t in said] == [
        "🔄 Background task started",
        "✅ Background task done",
    ]


async def test_a_run_stopped_before_it_began_never_reaches_the_model(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    from hermes_tui.assembly import build_gateway
    from tests.conftest import make_config

    gw = build_gateway(make_config(hermes_home, fake_openai))
    rec = Recorder(gw.bus)
    await gw.start(local=False, adapters=[])
    try:
        service = gw.feature("background").service
        origin = SessionSource(platform="telegram", chat_id="5")
        run = await service.launch(origin, "never mind")
        assert service.stop_chat(origin.session_key) == 1  # in the same tick: not begun yet
        stopped = await rec.event(BackgroundRunChanged, lambda e: e.state == "stopped")
        assert stopped.run_id == run.id and service.runs == {}
        assert gw.store is not None and await open_entries(gw.store) == []
        assert not any(_asks(r, "never mind") for r in fake_openai.requests)
    finally:
        rec.close()
        await gw.stop()


async def test_the_local_terminal_gets_its_result_on_the_bus_and_in_its_transcript(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    from hermes_tui.assembly import build_gateway
    from tests.conftest import make_config

    gw = build_gateway(make_config(hermes_home, fake_openai))
    rec = Recorder(gw.bus)
    await gw.start()
    try:
        await gw.local.submit("hello")
        await rec.event(ev.TurnFinished)
        await gw.local.submit("/background sum it up")
        done = await rec.event(BackgroundRunChanged, lambda e: e.state == "finished")
        key = gw.local.source.session_key
        assert done.origin_key == key and done.delivery_error is None
        notice = await rec.event(ev.Notice, lambda e: e.session_key == key and "done" in e.text)
        assert notice.text == "✅ Background task done: “sum it up”\n\necho: sum it up"
        store = gw.store
        assert store is not None
        chat = await store.get_active_session(key)
        assert chat is not None
        assert any(n.text == notice.text for n in await store.get_notes(chat.id))
    finally:
        rec.close()
        await gw.stop()


@pytest.mark.slow
async def test_kill_9_mid_run_the_chat_is_told_once_at_the_next_start(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """The real ``hermes gateway run`` in a subprocess, killed (SIGKILL) while a background
    run waits on the model; two more starts: the chat is told once, the run never rerun."""
    slow_model(fake_openai)
    write_config(hermes_home, drain=2.0)
    told = (
        "⚠ Your background task “slow: map the coast” was interrupted by a restart and did "
        "not finish. Send /background again if you still need it."
    )
    proc = start(hermes_home, tg, fake_openai)
    try:
        tg.inject_message(DM, "/background slow: map the coast")
        await until(lambda: fake_openai.held == 1, 30, "the run to reach the model")
        await until(lambda: len(tg.messages_in(DM)) == 1, 10, "the started reply")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        asked = len(fake_openai.requests)
        fake_openai.release()  # the killed run's stream: nobody is reading it any more

        proc = start(hermes_home, tg, fake_openai)
        await until(lambda: told in h_texts(tg), 30, "the chat to be told")
        await until(lambda: _left(hermes_home) == 0, 10, "the entry to be forgotten")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

        proc = start(hermes_home, tg, fake_openai)
        tg.inject_message(DM, "anyone there?")  # once answered, this start has settled
        await until(lambda: "echo: anyone there?" in h_texts(tg), 30, "the third start to answer")
        assert h_texts(tg).count(told) == 1
        assert not any(_asks(r, "map the coast") for r in fake_openai.requests[asked:])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def h_texts(tg: FakeTelegram) -> list[str]:
    return [m.plain_text for m in tg.messages_in(DM)]


def _left(home: Path) -> int:
    conn = sqlite3.connect(next(home.glob("*.db")))
    try:
        query = "SELECT value FROM kv WHERE substr(key, 1, ?) = ?"
        rows = conn.execute(query, (len(KV_PREFIX), KV_PREFIX)).fetchall()
        return sum(json.loads(value)["state"] != "done" for (value,) in rows)
    finally:
        conn.close()


async def test_from_a_used_home_a_run_sees_none_of_the_history_and_searches_only_its_chat(
    used_home: HomeManifest, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """A chat with days of history: the run's prompt reaches the model alone, its
    session_search finds the chat's own words but not another chat's, and the chat's stored
    conversation is unchanged by the run."""
    target = used_home.session(used_home.search_session_id)
    chat = next(k for k in used_home.chats if k.startswith("telegram:dm:") and k != target.key)
    chat_id = int(chat.split(":")[2])
    config = telegram_config(used_home.home_path, fake_openai, tg)
    h = await start_gateway(config, tg)
    try:
        store = h.gw.store
        assert store is not None
        before = await store.get_active_session(chat)
        assert before is not None and before.message_count > 0
        own_words = [
            w
            for m in await store.get_messages(before.id)
            if m.role == "user"
            for w in (m.content or "").split()
            if w.isalpha() and len(w) > 5
        ]
        own = own_words[0]
        fake_openai.enqueue(
            ScriptedReply(
                tool_calls=[
                    ToolCallSpec("session_search", {"query": own}),
                    ToolCallSpec("session_search", {"query": used_home.search_word}),
                ]
            ),
            ScriptedReply(text="searched"),
        )
        tg.inject_message(chat_id, "/background what did we say about it?")
        done = await h.rec.event(BackgroundRunChanged, lambda e: e.state == "finished")
        assert done.origin_key == chat
        first = next(r for r in fake_openai.requests if _asks(r, "what did we say about it?"))
        assert [m["role"] for m in first["messages"]] == ["system", "user"]
        mine, other = [m for m in await store.get_messages(done.session_id) if m.role == "tool"]
        assert own in (mine.content or "") and before.id in (mine.content or "")
        assert other.content == f"no past messages match {used_home.search_word!r}"
        after = await store.get_active_session(chat)
        assert after is not None and after.id == before.id
        assert after.message_count == before.message_count
        await tg.wait_for(lambda: any(t.endswith("searched") for t in h.texts(chat_id)))
    finally:
        await h.stop()
