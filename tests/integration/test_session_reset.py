"""Reset policies through the whole gateway: every path, the watcher, a restart, a race.

Why: a session that should have expired but is reached by a path that forgot to check is
"resurrected" (a known Hermes Agent complaint); a message racing a reset must land in exactly
one session. The registry's clock is moved; the store, the runner and the platforms are real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import Recorder
from tests.homes import HomeManifest
from tests.integration.test_telegram_adapter import start_gateway, telegram_config

ANN = SessionSource("testchat", "c1", user_id="ann", user_name="ann")
IDLE = 30 * 60


class ChatPlatform(PlatformAdapter):
    """A remote platform that records what the gateway sends it."""

    name = "testchat"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    async def start(self) -> None:
        self.report("connected")

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        self.sent.append((source.chat_id, text))


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.offset


def reset_config(home: Path, fake: FakeOpenAI, mode: str = "idle") -> Config:
    config = make_config(home, fake)
    config.allowed_users = ["ann"]
    config.session_reset.mode = mode  # type: ignore[assignment]
    config.session_reset.idle_minutes = IDLE // 60
    return config


async def start(config: Config) -> tuple[Gateway, ChatPlatform, Recorder, Clock]:
    gateway = build_gateway(config)
    chat = ChatPlatform()
    recorder = Recorder(gateway.bus)
    await gateway.start(local=True, adapters=[chat], offer_import=False)
    clock = Clock()
    assert gateway.runner is not None
    gateway.runner.registry.clock = clock
    return gateway, chat, recorder, clock


@pytest.fixture
async def gw(hermes_home: Path, fake_openai: FakeOpenAI):
    gateway, chat, recorder, clock = await start(reset_config(hermes_home, fake_openai))
    gateway.chat, gateway.rec, gateway.clock = chat, recorder, clock  # type: ignore[attr-defined]
    yield gateway
    recorder.close()
    await gateway.stop()


async def say(gw: Gateway, text: str, source: SessionSource = ANN) -> None:
    assert gw.runner is not None
    await gw.runner.handle(MessageEvent(text=text, source=source))
    await gw.runner.wait_idle()


async def active_id(gw: Gateway, source: SessionSource = ANN) -> str:
    record = await gw.store.get_active_session(source.session_key)
    assert record is not None
    return record.id


async def test_an_idle_chat_starts_afresh_told_why_and_the_old_one_stays(gw) -> None:
    await say(gw, "remember the walrus")
    first = await active_id(gw)
    gw.clock.offset = IDLE - 5
    await say(gw, "still here")
    assert await active_id(gw) == first  # inside the window: same session
    gw.clock.offset += IDLE + 1
    await say(gw, "back again")
    second = await active_id(gw)
    assert second != first
    texts = [t for _, t in gw.chat.sent]
    notice = next(i for i, t in enumerate(texts) if "New session" in t)
    assert "inactive for 30m" in texts[notice] and "/resume" in texts[notice]
    assert texts[notice + 1] == "echo: back again"  # told before the answer
    # The old session is kept and searchable.
    old = await gw.store.get_messages(first)
    assert [m.content for m in old if m.role == "user"] == ["remember the walrus", "still here"]
    hits = await gw.store.search("walrus", session_key=ANN.session_key)
    assert hits and hits[0].session_id == first
    changed = [e for e in gw.rec.of(ev.SessionChanged) if e.expired]
    assert [(e.expired, e.previous_id, e.session_id) for e in changed] == [("idle", first, second)]


async def test_the_model_is_sent_only_the_new_session(gw, fake_openai: FakeOpenAI) -> None:
    await say(gw, "old topic")
    gw.clock.offset = IDLE + 1
    await say(gw, "new topic")
    sent = fake_openai.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[-1]["content"] == "new topic"


async def test_commands_and_the_operator_check_expiry_too(gw) -> None:
    await say(gw, "hello")
    first = await active_id(gw)
    gw.clock.offset = IDLE + 1
    await say(gw, "/usage")  # a command reaches the session: it is reset first
    assert await active_id(gw) != first
    assert "New session" in gw.chat.sent[-2][1] and "Context:" in gw.chat.sent[-1][1]
    # The operator stepping in after the next window: a new session, not the expired one.
    await say(gw, "hello again")
    second = await active_id(gw)
    gw.clock.offset += IDLE + 1
    assert gw.runner is not None
    await gw.runner.operator_say(ANN, "operator here")
    third = await active_id(gw)
    assert third != second
    assert [m.content for m in await gw.store.get_messages(third)] == ["operator here"]


async def test_a_message_racing_the_reset_lands_in_exactly_one_session(gw) -> None:
    """Ten messages and the watcher arrive together just after the window closed: the
    session is reset once, and every message is in the new session, none in the old."""
    await say(gw, "before")
    first = await active_id(gw)
    gw.clock.offset = IDLE + 1
    assert gw.runner is not None
    runner = gw.runner
    real_create = gw.store.create_session

    async def slow_create(*args, **kwargs):  # widen the window a racer could slip through
        await asyncio.sleep(0.05)
        return await real_create(*args, **kwargs)

    gw.store.create_session = slow_create
    events = [MessageEvent(text=f"racer {i}", source=ANN) for i in range(10)]
    await asyncio.gather(
        runner.registry.expire_due(),
        *(runner.handle(e) for e in events),
        runner.registry.expire_due(),
    )
    await runner.wait_idle()
    resets = [e for e in gw.rec.of(ev.SessionChanged) if e.reason == "reset"]
    assert len(resets) == 1
    second = await active_id(gw)
    old = await gw.store.get_messages(first)
    new = await gw.store.get_messages(second)
    assert [m.content for m in old if m.role == "user"] == ["before"]
    racers = "\n\n".join(m.content or "" for m in new if m.role == "user")
    assert all(f"racer {i}" in racers for i in range(10))
    assert sum("New session" in t for _, t in gw.chat.sent) == 1


async def test_the_watcher_resets_quiet_chats_and_tells_them_at_their_next_message(gw) -> None:
    await say(gw, "one")
    first = await active_id(gw)
    other = SessionSource("testchat", "c2", user_id="ann", user_name="ann")
    await say(gw, "two", other)
    assert gw.runner is not None
    gw.runner.registry.forget(gw.runner.sessions[ANN.session_key])  # evicted from memory
    gw.clock.offset = IDLE + 1
    assert await gw.runner.registry.expire_due() == 2  # one stored, one live
    assert await gw.runner.registry.expire_due() == 0  # new empty sessions never expire
    assert await active_id(gw) != first
    assert not any("New session" in t for _, t in gw.chat.sent)  # nobody woken at night
    await say(gw, "morning")
    texts = [t for _, t in gw.chat.sent]
    assert "New session" in texts[-2] and texts[-1] == "echo: morning"


async def test_none_never_resets(hermes_home: Path, fake_openai: FakeOpenAI) -> None:
    gateway, chat, recorder, clock = await start(reset_config(hermes_home, fake_openai, "none"))
    try:
        await say(gateway, "forever")
        first = await active_id(gateway)
        clock.offset = 365 * 86400
        assert gateway.runner is not None
        assert await gateway.runner.registry.expire_due() == 0
        await say(gateway, "still")
        assert await active_id(gateway) == first
    finally:
        recorder.close()
        await gateway.stop()


async def test_a_restart_inside_and_after_the_idle_window(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """Stopped and started on the same home: inside the window the chat goes on; a chat
    idle past its window while the gateway was down is reset by its next message."""
    config = reset_config(hermes_home, fake_openai)
    gateway, _, recorder, _ = await start(config)
    await say(gateway, "before the restart")
    first = await active_id(gateway)
    recorder.close()
    await gateway.stop()

    gateway, chat, recorder, clock = await start(reset_config(hermes_home, fake_openai))
    try:
        clock.offset = IDLE / 2
        await say(gateway, "shortly after")
        assert await active_id(gateway) == first
        recorder.close()
        await gateway.stop()
        gateway, chat, recorder, clock = await start(reset_config(hermes_home, fake_openai))
        clock.offset = IDLE / 2 + IDLE + 1  # down for longer than the window
        await say(gateway, "much later")
        assert await active_id(gateway) != first
        assert "New session" in chat.sent[0][1] and chat.sent[1][1] == "echo: much later"
    finally:
        recorder.close()
        await gateway.stop()


async def test_telegram_is_told_in_the_chat(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """Through python-telegram-bot and the fake Bot API: the notice is a message in the chat,
    before the answer; a group with ``notify: false`` is reset silently."""
    config = telegram_config(hermes_home, fake_openai, tg)
    config.session_reset.mode = "idle"
    config.session_reset.idle_minutes = 30
    from hermes_gateway.config import SessionResetOverride

    config.reset_by_type["group"] = SessionResetOverride(notify=False)
    h = await start_gateway(config, tg)
    try:
        assert h.gw.runner is not None
        clock = Clock()
        h.gw.runner.registry.clock = clock
        tg.inject_message(42, "first words", first_name="Ada")
        await h.answered(1)
        clock.offset = IDLE + 1
        tg.inject_message(42, "after a long pause", first_name="Ada")
        await h.answered(2)
        texts = h.texts(42)
        assert texts[0] == "echo: first words"
        assert "New session" in texts[1] and "inactive for 30m" in texts[1]
        assert texts[2] == "echo: after a long pause"
        kw: dict[str, Any] = {"chat_type": "supergroup", "user_id": 7, "chat_title": "Team"}
        tg.inject_message(-100777, "hello group", **kw)
        await h.answered(3)
        clock.offset += IDLE + 1
        tg.inject_message(-100777, "hello again", **kw)
        await h.answered(4)
        assert h.texts(-100777) == ["echo: hello group", "echo: hello again"]
        resets = [e for e in h.rec.of(ev.SessionChanged) if e.expired]
        assert [e.platform for e in resets] == ["telegram", "telegram"]
    finally:
        await h.stop()


async def test_an_api_session_expires_like_a_chat(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """A client continuing a stored session (X-Hermes-Session-Id) after its window gets a
    fresh one; API clients are never sent a notice (Hermes' notify_exclude_platforms)."""
    from tests.integration.api_harness import start_api

    def configure(config: Config) -> None:
        config.session_reset.mode = "idle"
        config.session_reset.idle_minutes = IDLE // 60

    h = await start_api(hermes_home, fake_openai, configure=configure)
    try:
        assert h.gw.runner is not None
        clock = Clock()
        h.gw.runner.registry.clock = clock
        client = h.client()
        headers = {"X-Hermes-Session-Id": "s-1"}
        ask = [{"role": "user", "content": "first"}]
        await client.chat.completions.create(
            model="hermes-agent", messages=ask, extra_headers=headers
        )
        source = h.adapter.source_for("s-1")
        first = await h.gw.store.get_active_session(source.session_key)
        clock.offset = IDLE + 1
        ask = [{"role": "user", "content": "second"}]
        await client.chat.completions.create(
            model="hermes-agent", messages=ask, extra_headers=headers
        )
        second = await h.gw.store.get_active_session(source.session_key)
        assert first is not None and second is not None and second.id != first.id
        sent = fake_openai.requests[-1]["messages"]
        assert [(m["role"], m["content"]) for m in sent[1:]] == [("user", "second")]
        assert not h.gw.runner.sessions[source.session_key].reset_notice
    finally:
        await h.stop()


async def test_a_used_home_is_swept_once_and_loses_nothing(
    used_home: HomeManifest, fake_openai: FakeOpenAI
) -> None:
    """A day-old home under a 30-minute idle policy: the watcher ends every chat that has
    messages (once), keeps every stored message, and leaves empty sessions alone."""
    gateway, _, recorder, clock = await start(reset_config(used_home.home_path, fake_openai))
    try:
        assert gateway.runner is not None
        registry = gateway.runner.registry
        now = clock()
        active = [
            s
            for s in used_home.sessions
            if not s.ended and s.messages and s.updated_at < now - IDLE
        ]
        swept = await registry.expire_due()  # the pass at start may have done some already
        resets = [e for e in recorder.of(ev.SessionChanged) if e.expired]
        assert {e.previous_id for e in resets} == {s.id for s in active}
        assert swept <= len(resets) == len(active) > 0
        assert await registry.expire_due() == 0
        total = 0
        for info in used_home.sessions:
            total += len(await gateway.store.get_messages(info.id))
        assert total == used_home.messages
    finally:
        recorder.close()
        await gateway.stop()


async def test_a_notice_waiting_for_a_quiet_chat_survives_a_restart(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """The watcher's reset and its notice are one transaction; the notice is told once,
    at the chat's first message after the restart, and never again."""
    gateway, _, recorder, clock = await start(reset_config(hermes_home, fake_openai))
    await say(gateway, "before")
    clock.offset = IDLE + 1
    assert gateway.runner is not None
    assert await gateway.runner.registry.expire_due() == 1
    recorder.close()
    await gateway.stop()
    gateway, chat, recorder, clock = await start(reset_config(hermes_home, fake_openai))
    try:
        await say(gateway, "after the restart")
        await say(gateway, "and again")
        texts = [t for _, t in chat.sent]
        assert sum("New session" in t for t in texts) == 1 and "New session" in texts[0]
        assert await gateway.store.kv_get("session_reset_notice:" + ANN.session_key) is None
    finally:
        recorder.close()
        await gateway.stop()


async def test_chats_kept_by_their_own_policy_do_not_starve_the_watcher(
    hermes_home: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DMs never reset (an override), groups after 30 minutes: the older DMs fill the first
    pages of candidates, and the groups behind them are still reset."""
    from hermes_gateway.config import SessionResetOverride
    from hermes_gateway.runner import sessions

    monkeypatch.setattr(sessions, "WATCH_PAGE", 3)
    config = reset_config(hermes_home, fake_openai)
    config.reset_by_type["dm"] = SessionResetOverride(mode="none")
    gateway, _, recorder, clock = await start(config)
    try:
        assert gateway.runner is not None
        for i in range(7):
            await say(gateway, "hi", SessionSource("testchat", f"d{i}", user_id="ann"))
        groups = [
            SessionSource("testchat", f"g{i}", chat_type="group", user_id="ann") for i in range(2)
        ]
        for group in groups:
            await gateway.runner.handle(MessageEvent(text="hi all", source=group, mentioned=True))
            await gateway.runner.wait_idle()
        for key in list(gateway.runner.sessions):
            gateway.runner.registry.forget(gateway.runner.sessions[key])
        clock.offset = IDLE + 1
        assert await gateway.runner.registry.expire_due() == 2
        resets = {e.session_key for e in recorder.of(ev.SessionChanged) if e.expired}
        assert resets == {f"{g.session_key}:@ann" for g in groups}  # each member's own
    finally:
        recorder.close()
        await gateway.stop()
