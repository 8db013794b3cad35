"""A slash command a platform delivers again is never run twice (``runner/command_guard.py``).

Ordinary messages are deduplicated by the inbox; commands are recorded by their platform
message id before they run (``store/command_receipts.py``). Through real adapters against
the fakes: the same ``/new`` handed over twice by Telegram, the real ``hermes gateway run``
killed (SIGKILL) while it replied to a command and started again (Telegram's journal replays
the update), Mattermost's catch-up fetching the last posts again at every start, a used home
upgraded from the schema before the receipts, and hostile message ids.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.runner.command_guard import CUT_SHORT
from hermes_gateway.store import SessionStore, default_db_path, latest_version
from hermes_gateway.store.command_receipts import MAX_KEY, CommandReceipts
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import Recorder
from tests.homes import HomeManifest
from tests.integration.test_durable_inbound import log_has, start, until, write_config
from tests.integration.test_telegram_adapter import DM, start_gateway, telegram_config

CHAT_KEY = f"telegram:dm:{DM}"
NEW_REPLY = "New session started"


def duplicates(rec: Recorder, platform: str) -> list[ev.MessageDropped]:
    return [
        e for e in rec.of(ev.MessageDropped) if e.platform == platform and e.reason == "duplicate"
    ]


async def sessions_of(store: SessionStore | None, key: str) -> int:
    assert store is not None
    return len(await store.sessions_of(key))


def new_replies(texts: list[str]) -> list[str]:
    return [t for t in texts if t.startswith(NEW_REPLY)]


async def test_the_same_new_delivered_twice_makes_one_session_and_one_answer(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        tg.inject_message(DM, "hello")
        await h.answered(1)
        update = tg.inject_message(DM, "/new")
        await tg.wait_for(lambda: len(new_replies(h.texts(DM))) == 1)
        assert await sessions_of(h.gw.store, CHAT_KEY) == 2  # hello's, ended; /new's

        tg.inject_update({"message": update["message"]})  # the same message, handed over again
        await h.rec.wait_for(lambda: len(duplicates(h.rec, "telegram")) == 1)
        assert await sessions_of(h.gw.store, CHAT_KEY) == 2
        assert len(new_replies(h.texts(DM))) == 1

        tg.inject_message(DM, "/new")  # a new message: a new command, run
        await tg.wait_for(lambda: len(new_replies(h.texts(DM))) == 2)
        assert await sessions_of(h.gw.store, CHAT_KEY) == 3
        replied = [e for e in h.rec.of(ev.CommandReplied) if e.command == "new"]
        assert len(replied) == 2
    finally:
        await h.stop()


async def test_a_repeat_survives_a_restart_and_a_different_command_still_runs(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """The receipt is in the store, not in the process: a second start drops the repeat too."""
    config = telegram_config(hermes_home, fake_openai, tg)
    h = await start_gateway(config, tg)
    try:
        title = tg.inject_message(DM, "/title Trip plans")
        await tg.wait_for(lambda: len(h.texts(DM)) == 1)
    finally:
        await h.stop()
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        tg.inject_update({"message": title["message"]})
        await h.rec.wait_for(lambda: len(duplicates(h.rec, "telegram")) == 1)
        assert len(h.texts(DM)) == 1
        tg.inject_message(DM, "/title Other plans")
        await tg.wait_for(lambda: len(h.texts(DM)) == 2)
        store = h.gw.store
        assert store is not None
        active = await store.get_active_session(CHAT_KEY)
        assert active is not None and active.title == "Other plans"
    finally:
        await h.stop()


@pytest.mark.slow
async def test_kill_9_while_replying_to_a_command_never_runs_it_again(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """The real ``hermes gateway run``, killed (SIGKILL) after ``/new`` ran and while its
    reply was on the way, before the update was confirmed: the next start replays the update
    from the journal; the command is not run again, its reply is delivered once."""
    write_config(hermes_home, drain=2.0)
    proc = start(hermes_home, tg, fake_openai)
    try:
        await until(lambda: log_has(hermes_home, "Telegram connected"), 20, "the first start")
        tg.inject_message(DM, "hello")
        await until(lambda: "echo: hello" in texts(tg), 20, "the first answer")
        await until(lambda: _open_inbox(hermes_home) == 0, 10, "the answer to be marked done")
        tg.stall_next("sendMessage")
        tg.inject_message(DM, "/new")
        await until(lambda: tg.stalled == 1, 20, "the /new reply to be on its way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        tg.release_stalled()  # the killed process's call: it never reached the chat
        assert _sessions(hermes_home) == 2  # /new ran before the kill
        assert _receipts(hermes_home) == [("answered",)]

        proc = start(hermes_home, tg, fake_openai)
        repeat = "a repeat of /new"
        await until(lambda: log_has(hermes_home, repeat), 30, "the replayed /new to be dropped")
        await until(lambda: len(new_replies(texts(tg))) == 1, 10, "the reply delivered")
        assert _sessions(hermes_home) == 2  # not run again
        assert _receipts(hermes_home) == [("done",)]

        tg.inject_message(DM, "/new")  # a different message: runs
        await until(lambda: len(new_replies(texts(tg))) == 2, 20, "the second /new reply")
        assert _sessions(hermes_home) == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert texts(tg).count("echo: hello") == 1
        assert log_has(hermes_home, repeat) and not log_has(hermes_home, repeat, 2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


async def test_mattermost_catch_up_after_a_restart_does_not_run_a_command_again(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """A second platform, the same guard: every Mattermost start fetches the last seconds of
    posts again (the catch-up margin); the inbox drops the message, the guard the command."""
    from hermes_gateway.platforms.mattermost.adapter import MattermostAdapter
    from tests.fakes.mattermost_server import FakeMattermost
    from tests.integration.mattermost_harness import Harness as MMHarness
    from tests.integration.mattermost_harness import add_world, mattermost_config

    async with FakeMattermost() as fake:
        w = add_world(fake)
        key = f"mattermost:dm:{w.dm_alice}"

        async def life(body):  # type: ignore[no-untyped-def]
            config = mattermost_config(
                hermes_home, fake_openai, fake, MATTERMOST_ALLOWED_USERS=w.alice
            )
            gateway = build_gateway(config)
            recorder = Recorder(gateway.bus)
            runner = await gateway.start(local=False)
            try:
                adapter = runner.adapters["mattermost"]
                assert isinstance(adapter, MattermostAdapter)
                h = MMHarness(fake, w, gateway, runner, adapter, recorder)
                await h.wait_state("connected")
                await body(h)
            finally:
                await gateway.stop()
                recorder.close()

        async def first(h: MMHarness) -> None:
            await h.dm("hello")
            await h.wait_answers(w.dm_alice, 1)
            await h.dm(" /new")  # the space gets past Mattermost's own slash commands
            await h.wait_answers(w.dm_alice, 2)
            assert await sessions_of(h.gateway.store, key) == 2

        async def second(h: MMHarness) -> None:
            # Both posts come again: "hello" to the inbox, "/new" to the guard.
            await h.recorder.wait_for(lambda: len(duplicates(h.recorder, "mattermost")) == 2)
            assert h.adapter.catch_ups >= 1
            assert await sessions_of(h.gateway.store, key) == 2
            assert len(new_replies(fake.shown(w.dm_alice))) == 1
            await h.dm(" /new")
            await h.wait_answers(w.dm_alice, 3)
            assert await sessions_of(h.gateway.store, key) == 3

        await life(first)
        await life(second)
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["hello"]


async def test_a_used_home_upgrades_to_the_receipts_and_keeps_its_history(
    used_home: HomeManifest, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """A home written before the receipts (schema 9: the used home with migration 10 undone)
    opens, gains the table in one step, and keeps every session."""
    db = default_db_path(used_home.home_path)
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TABLE command_receipts")
        conn.execute("PRAGMA user_version = 9")
        conn.commit()
    finally:
        conn.close()

    h = await start_gateway(telegram_config(used_home.home_path, fake_openai, tg), tg)
    try:
        store = h.gw.store
        assert store is not None and store.schema_version == latest_version() >= 10
        stored = {r.id for r in await store.list_sessions(limit=1000)}
        assert stored == {s.id for s in used_home.sessions}
        user = 1001  # allowed in the used home's config; a chat with history
        key = f"telegram:dm:{user}"
        before = await sessions_of(store, key)
        assert before >= 1
        update = tg.inject_message(user, "/new")
        await tg.wait_for(lambda: len(new_replies(h.texts(user))) == 1)
        tg.inject_update({"message": update["message"]})
        await h.rec.wait_for(lambda: len(duplicates(h.rec, "telegram")) == 1)
        assert len(new_replies(h.texts(user))) == 1
        assert await sessions_of(store, key) == before + 1
    finally:
        await h.stop()


async def test_hostile_message_ids_are_recorded_bounded_and_still_recognised(
    hermes_home: Path, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """A forged id of 100 000 characters, or one with a lone surrogate (SQLite cannot store
    it as text), breaks nothing: the command runs once, its repeat is dropped, and the
    stored key is a digest of bounded size."""
    caplog.set_level(logging.INFO, logger="hermes_gateway.runner.command_guard")
    gw = build_gateway(make_config(hermes_home, fake_openai, GATEWAY_ALLOW_ALL_USERS="true"))
    rec = Recorder(gw.bus)
    runner = await gw.start(local=False, adapters=[])
    try:
        for n, forged in enumerate(["9" * 100_000, "id-\ud800-x", "'; DROP TABLE sessions; --"]):
            source = SessionSource(platform="telegram", chat_id=f"70{n}", user_id=f"70{n}")
            await runner.handle(MessageEvent(text="/new", source=source, message_id=forged))
            once = await sessions_of(gw.store, source.session_key)
            assert once >= 1 and not duplicates(rec, "telegram")[n:]
            await runner.handle(MessageEvent(text="/new", source=source, message_id=forged))
            assert len(duplicates(rec, "telegram")) == n + 1
            assert await sessions_of(gw.store, source.session_key) == once
        store = gw.store
        assert store is not None
        keys = await store.read_sync(
            lambda c: [r[0] for r in c.execute("SELECT dedupe_key FROM command_receipts")]
        )
        assert len(keys) == 3 and all(len(k) <= MAX_KEY for k in keys)
        assert await store.list_sessions(limit=100)  # the quoted id dropped nothing
        repeats = [r.getMessage() for r in caplog.records if "a repeat of" in r.getMessage()]
        assert len(repeats) == 3
        for line in repeats:  # a log file (UTF-8) takes them
            line.encode("utf-8")
    finally:
        rec.close()
        await gw.stop()


async def test_a_command_cut_short_by_a_kill_is_told_once_and_not_run_again(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """What a process killed while a command ran leaves (a ``running`` receipt): the replay
    tells the chat once that it was cut short, and runs nothing."""
    config = telegram_config(hermes_home, fake_openai, tg)
    h = await start_gateway(config, tg)
    try:
        update = tg.inject_message(DM, "/undo")
        await tg.wait_for(lambda: len(h.texts(DM)) == 1)
    finally:
        await h.stop()
    # Written as a process killed mid-command leaves it: the receipt, never finished.
    store = await SessionStore.open(default_db_path(hermes_home))
    try:
        await store.write_sync(
            lambda c: c.execute("UPDATE command_receipts SET state = 'running', reply = NULL")
        )
    finally:
        await store.close()
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        tg.inject_update({"message": update["message"]})
        await h.rec.wait_for(lambda: len(duplicates(h.rec, "telegram")) == 1)
        tg.inject_update({"message": update["message"]})  # told once: now only dropped
        await h.rec.wait_for(lambda: len(duplicates(h.rec, "telegram")) == 2)
        told = CUT_SHORT.format(command="undo")
        assert h.texts(DM)[1:] == [told]
        assert not [e for e in h.rec.of(ev.CommandReplied)]
    finally:
        await h.stop()


async def test_operator_commands_carry_no_id_and_are_never_recorded(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    gw = build_gateway(make_config(hermes_home, fake_openai))
    rec = Recorder(gw.bus)
    await gw.start()
    try:
        for _ in range(2):
            await gw.local.submit("/new")
        await rec.wait_for(lambda: len(rec.of(ev.CommandReplied)) == 2)
        assert gw.store is not None
        receipts = CommandReceipts(gw.store)
        assert await receipts.prune(now=1e12) == 0  # the table is empty
        assert not duplicates(rec, "local")
    finally:
        rec.close()
        await gw.stop()


def texts(tg: FakeTelegram) -> list[str]:
    return [m.plain_text for m in tg.messages_in(DM)]


def _sessions(home: Path) -> int:
    conn = sqlite3.connect(next(home.glob("*.db")))
    try:
        query = "SELECT COUNT(*) FROM sessions WHERE session_key = ?"
        return int(conn.execute(query, (CHAT_KEY,)).fetchone()[0])
    finally:
        conn.close()


def _open_inbox(home: Path) -> int:
    conn = sqlite3.connect(next(home.glob("*.db")))
    try:
        return int(conn.execute("SELECT COUNT(*) FROM inbox WHERE state != 'done'").fetchone()[0])
    finally:
        conn.close()


def _receipts(home: Path) -> list[tuple[str]]:
    conn = sqlite3.connect(next(home.glob("*.db")))
    try:
        return conn.execute("SELECT state FROM command_receipts").fetchall()
    finally:
        conn.close()
