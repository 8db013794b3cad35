"""The used home (tests/homes.py) is what it claims to be, and a whole gateway reads it.

Other tests assert against the manifest, so the manifest is checked here against the store
itself; then a gateway started on the home (Telegram on the fake, connected) sees the stored
chats, transcripts, search hit and cron jobs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter

from hermes_cron.jobs import CronStore
from hermes_gateway import events as ev
from hermes_gateway.store import SessionStore, default_db_path
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.homes import HomeManifest


async def test_the_manifest_matches_the_store(used_home: HomeManifest) -> None:
    store = await SessionStore.open(default_db_path(used_home.home_path))
    try:
        stored = {r.id: r for r in await store.list_sessions(limit=1000)}
        assert set(stored) == {s.id for s in used_home.sessions}
        for info in used_home.sessions:
            got = stored[info.id]
            assert (got.session_key, got.title, got.ended_at is not None, got.message_count) == (
                info.key,
                info.title,
                info.ended,
                info.messages,
            )
        # One active session per chat; past ones (as /new leaves them) on several chats.
        active = Counter(s.key for s in used_home.sessions if not s.ended)
        assert all(active[k] == 1 for k in used_home.chats)
        with_past = {s.key for s in used_home.ended}
        assert {"local", "telegram", "discord"} <= {k.split(":")[0] for k in with_past}
        assert {s.chat_type for s in used_home.sessions if s.platform == "telegram"} == {
            "dm",
            "group",
        }
        assert {s.chat_type for s in used_home.sessions if s.platform == "discord"} >= {
            "channel",
            "thread",
        }
        api = [s for s in used_home.sessions if s.platform == "api"]
        assert len({s.display_name for s in api}) >= 3 and len(api) >= 10
        assert used_home.titled and used_home.tool_calls > 0
        assert 2_000 <= used_home.messages <= 5_000
        hits = await store.search(used_home.search_word)
        assert [(h.message_id, h.session_id) for h in hits] == [
            (used_home.search_message_id, used_home.search_session_id)
        ]
        target = used_home.session(used_home.search_session_id)
        assert target.ended and target.title and hits[0].session_title == target.title
        cron = CronStore(store)
        jobs = await cron.list()
        assert sorted(j.id for j in jobs) == sorted(used_home.cron_jobs)
        runs = [len(await cron.runs(j.id)) for j in jobs]
        assert sum(runs) == used_home.cron_runs
    finally:
        await store.close()
    with sqlite3.connect(default_db_path(used_home.home_path)) as db:
        calls, results = db.execute(
            "SELECT SUM(tool_calls IS NOT NULL), SUM(role = 'tool') FROM messages"
        ).fetchone()
    assert calls == results == used_home.tool_calls


async def test_a_gateway_on_the_used_home_sees_its_history(
    used_home: HomeManifest, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    config = make_config(
        used_home.home_path,
        fake_openai,
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_BASE_URL=tg.base_url,
        TELEGRAM_BASE_FILE_URL=tg.base_file_url,
    )
    assert config.platforms.telegram.token and config.platforms.discord.token
    gateway = build_gateway(config)
    sub = gateway.bus.subscribe(name="test")
    await gateway.start(local=True)
    try:
        assert gateway.operator is not None
        operator = gateway.operator

        async def telegram_connected() -> None:
            while True:
                event = await sub.get()
                if isinstance(event, ev.PlatformStatus) and event.platform == "telegram":
                    if event.state == "connected":
                        return

        await asyncio.wait_for(telegram_connected(), timeout=10)
        recent = await operator.recent_sessions(limit=200)
        expected = sorted(
            (s for s in used_home.sessions if not s.ended), key=lambda s: -s.updated_at
        )
        assert [r.id for r in recent] == [s.id for s in expected]
        chat = next(k for k in used_home.chats if k.startswith("telegram:group:"))
        view = await operator.select(chat)
        assert view.record is not None and view.record.id == used_home.active(chat).id
        assert len(view.messages) == used_home.active(chat).messages
        hits = await operator.search(used_home.search_word)
        assert [h.session_id for h in hits] == [used_home.search_session_id]
    finally:
        await gateway.stop()
