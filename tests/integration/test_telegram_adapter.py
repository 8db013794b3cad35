"""The Telegram platform end to end: real python-telegram-bot against FakeTelegram over HTTP,
through the real Gateway and GatewayRunner, answered by the scripted OpenAI fake.

Why these tests: they pin what a Telegram user sees (streamed edits ending in exactly the
agent's answer, chunking, formatting fallback, rate limits), who gets answered (mentions,
access), and how chats map onto sessions. Pacing is shrunk through the config so the whole
file runs in seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.access.policy import hash_id
from hermes_gateway.config import Config
from hermes_gateway.delivery import markdown_to_telegram_html, utf16_len
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.telegram.adapter import TelegramAdapter
from hermes_gateway.runner.busy_ack import TEXTS
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.fakes.telegram_server import NOT_MODIFIED_DESCRIPTION, FakeTelegram
from tests.helpers import Recorder

DM = 42
GROUP = -100555


def telegram_config(home: Path, openai: FakeOpenAI, tg: FakeTelegram, **env: str) -> Config:
    """A config pointing PTB at the fake, with pacing shrunk so tests run fast."""
    env.setdefault("GATEWAY_ALLOW_ALL_USERS", "true")
    config = make_config(
        home,
        openai,
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_BASE_URL=tg.base_url,
        TELEGRAM_BASE_FILE_URL=tg.base_file_url,
        **env,
    )
    t = config.platforms.telegram
    t.poll_timeout = 2.0
    t.rate_interval = 0.003
    t.global_rate = 0.0
    t.edit_interval = 0.02
    t.media_group_wait = 0.15
    t.reconnect_initial = 0.1
    return config


class Harness:
    """A running gateway whose only platform is Telegram, plus what it published."""

    def __init__(self, gateway: Gateway, recorder: Recorder, tg: FakeTelegram) -> None:
        self.gw = gateway
        self.rec = recorder
        self.tg = tg

    @property
    def adapter(self) -> TelegramAdapter:
        assert self.gw.runner is not None
        adapter = self.gw.runner.adapters["telegram"]
        assert isinstance(adapter, TelegramAdapter)
        return adapter

    def states(self) -> list[str]:
        return [e.state for e in self.rec.of(ev.PlatformStatus) if e.platform == "telegram"]

    async def wait_state(self, state: str, timeout: float = 5.0) -> ev.PlatformStatus:
        await self.rec.wait_for(lambda: state in self.states(), timeout)
        return [
            e
            for e in self.rec.of(ev.PlatformStatus)
            if e.platform == "telegram" and e.state == state
        ][-1]

    async def answered(self, turns: int, timeout: float = 5.0) -> None:
        """Wait until ``turns`` turns finished and their deliveries are done."""
        await self.rec.wait_for(lambda: len(self.rec.of(ev.TurnFinished)) >= turns, timeout)
        assert self.gw.runner is not None
        await self.gw.runner.wait_idle(timeout)

    def texts(self, chat: int) -> list[str]:
        """What each bot message in a chat shows now (markup removed)."""
        return [m.plain_text for m in self.tg.messages_in(chat)]

    async def stop(self) -> None:
        self.rec.close()
        await self.gw.stop()


async def updates_handled(gw: Gateway, tg: FakeTelegram, timeout: float = 5.0) -> None:
    """Wait until the adapter finished every update injected so far, then for the runner.

    Why: an update the adapter refuses (forged ids, a duplicate after a restart) publishes
    no event; the adapter's ledger of handled updates is the one record that it was seen
    and dropped. Past its watermark every update went to the runner or nowhere, so once
    the runner is idle too, "nothing else happened" can be asserted without a sleep.
    """
    assert gw.runner is not None
    adapter = gw.runner.adapters["telegram"]
    assert isinstance(adapter, TelegramAdapter)
    last = tg.last_update_id
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while adapter.ledger.watermark < last:
        if loop.time() > deadline:
            raise TimeoutError(f"updates handled up to {adapter.ledger.watermark}, not {last}")
        await asyncio.sleep(0.01)
    await gw.runner.wait_idle(timeout)


async def start_gateway(
    config: Config, tg: FakeTelegram, *, local: bool = False, wait: bool = True
) -> Harness:
    """Start a gateway and (unless ``wait`` is False) wait until Telegram connected or failed."""
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    await gateway.start(local=local)  # the adapter comes from remote_adapters(), as in production
    harness = Harness(gateway, recorder, tg)
    if wait:
        await recorder.wait_for(lambda: {"connected", "failed"} & set(harness.states()))
    return harness


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram) -> AsyncIterator[Harness]:
    harness = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    yield harness
    await harness.stop()


def last_user_content(openai: FakeOpenAI) -> Any:
    return [m for m in openai.requests[-1]["messages"] if m["role"] == "user"][-1]["content"]


# ------------------------------------------------------------------ streaming delivery


async def test_dm_is_answered_by_progressive_edits_ending_in_the_exact_answer(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    answer = "Streaming works. " + " ".join(f"word{i}" for i in range(60)) + " The end."
    fake_openai.enqueue(ScriptedReply(text=answer, chunk_size=12, delay=0.01))
    h.tg.inject_message(DM, "tell me a story", first_name="Ada")
    await h.answered(1)
    [message] = h.tg.messages_in(DM)
    assert len(message.edits) >= 2, "the answer should grow by edits"
    assert message.edits[0].endswith("▌")  # a cursor while it is being written
    assert message.plain_text == answer
    assert message.current_text == markdown_to_telegram_html(answer)
    assert (DM, "typing") in h.tg.chat_actions
    # The chat is a session like any other, with its transcript stored.
    key = "telegram:dm:42"
    started = [e for e in h.rec.of(ev.SessionChanged) if e.session_key == key]
    assert started and started[0].platform == "telegram" and started[0].display_name == "Ada"
    record = await h.gw.store.get_active_session(key)  # type: ignore[union-attr]
    stored = await h.gw.store.get_messages(record.id)  # type: ignore[union-attr]
    assert [(m.role, m.content) for m in stored] == [
        ("user", "tell me a story"),
        ("assistant", answer),
    ]


async def test_markdown_is_rendered_as_telegram_html(h: Harness, fake_openai: FakeOpenAI) -> None:
    answer = "Use **bold**, `x < y` & _care_."
    fake_openai.enqueue(ScriptedReply(text=answer))
    h.tg.inject_message(DM, "format please")
    await h.answered(1)
    [message] = h.tg.messages_in(DM)
    assert message.parse_mode == "HTML"
    assert message.plain_text == "Use bold, x < y & care."
    assert {e["type"] for e in message.entities} == {"bold", "code", "italic"}


async def test_ten_thousand_characters_are_chunked_with_code_fences_intact(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    prose = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor " * 20 for i in range(12))
    code = "\n".join(f"value_{i:04d} = compute({i})  # step {i}" for i in range(160))
    answer = f"{prose}\n\n```python\n{code}\n```\n\nThat is all."
    assert len(answer) >= 10_000
    fake_openai.enqueue(ScriptedReply(text=answer, chunk_size=700))
    h.tg.inject_message(DM, "long one")
    await h.answered(1)
    messages = h.tg.messages_in(DM)
    assert len(messages) >= 3
    for m in messages:
        assert utf16_len(m.plain_text) <= 4096
        assert "▌" not in m.plain_text
    # Every code line arrives exactly once, always inside a python code block.
    seen: list[str] = []
    for m in messages:
        for ent in m.entities:
            if ent["type"] == "pre":
                assert ent.get("language") == "python"
                block = m.plain_text[ent["offset"] : ent["offset"] + ent["length"]]
                seen.extend(block.splitlines())
    assert seen == code.splitlines()
    assert messages[-1].plain_text.endswith("That is all.")
    assert messages[0].plain_text.startswith("Paragraph 0:")


async def test_plain_text_is_sent_when_telegram_refuses_the_entities(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    answer = "Some **bold** claim"
    fake_openai.enqueue(ScriptedReply(text=answer))
    h.tg.fail_next(
        "sendMessage",
        status=400,
        description='Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 5',
    )
    h.tg.inject_message(DM, "hi")
    await h.answered(1)
    [message] = h.tg.messages_in(DM)
    assert message.parse_mode is None
    assert message.current_text == answer
    assert h.adapter.transport is not None and h.adapter.transport.fallbacks == 1


async def test_429_storm_loses_nothing_and_duplicates_nothing(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    answer = " ".join(f"token{i}" for i in range(150))
    fake_openai.enqueue(ScriptedReply(text=answer, chunk_size=20, delay=0.03))
    # The first send is refused, then the fake enforces a per-chat limit our pacing exceeds.
    h.tg.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1
    )
    h.tg.set_rate_limit(per_chat_per_second=5, retry_after=1)
    h.tg.inject_message(DM, "storm")
    await h.answered(1, timeout=10)
    [message] = h.tg.messages_in(DM)  # refused sends were repeated, never doubled
    assert message.plain_text == answer
    calls = h.tg.methods_called()
    assert calls.count("sendMessage") == 2
    refused_edits = calls.count("editMessageText") - len(message.edits)
    assert refused_edits >= 1, "the storm should have refused some edits"
    assert not [e for e in h.rec.of(ev.Notice) if e.level == "error"]


async def test_message_is_not_modified_is_not_an_error(h: Harness, fake_openai: FakeOpenAI) -> None:
    answer = "Alpha beta gamma delta. " * 12
    fake_openai.enqueue(ScriptedReply(text=answer, chunk_size=15, delay=0.01))
    h.tg.fail_next("editMessageText", status=400, description=NOT_MODIFIED_DESCRIPTION)
    h.tg.inject_message(DM, "go")
    await h.answered(1)
    [message] = h.tg.messages_in(DM)
    assert message.plain_text == answer.strip()
    assert not [e for e in h.rec.of(ev.Notice) if e.level == "error"]


# ------------------------------------------------------------------ busy chats


async def test_new_messages_interrupt_and_are_answered_together(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    assert h.gw.runner is not None
    h.gw.runner.busy_acks.burst = 0.0  # the follow-ups come milliseconds after "first"
    fake_openai.enqueue(ScriptedReply(text="slow " * 200, chunk_size=5, delay=0.01))
    h.tg.inject_message(DM, "first")
    await h.tg.wait_for(lambda: bool(h.tg.messages_in(DM)))
    h.tg.inject_message(DM, "second")
    h.tg.inject_message(DM, "third")
    await h.answered(2)
    finished = h.rec.of(ev.TurnFinished)
    assert finished[0].interrupted
    # One partial answer ending quietly, not an "(interrupted)" message per follow-up.
    assert h.texts(DM)[0].endswith(" …") and "(interrupted)" not in " ".join(h.texts(DM))
    # ... and one line saying the follow-ups interrupt it (gateway.busy_ack), not one each.
    acks = [t for t in h.texts(DM) if t == TEXTS["interrupted"]]
    answers = [t for t in h.texts(DM) if t != TEXTS["interrupted"]]
    assert len(acks) == 1 and len(answers) == 2
    assert last_user_content(fake_openai) == "second\n\nthird"
    assert answers[-1] == "echo: second\n\nthird"


async def test_queue_mode_finishes_the_answer_first(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    config = telegram_config(hermes_home, fake_openai, tg, HERMES_BUSY_MODE="queue")
    h = await start_gateway(config, tg)
    assert h.gw.runner is not None
    h.gw.runner.busy_acks.burst = 0.0  # the follow-up comes milliseconds after "first"
    try:
        fake_openai.enqueue(ScriptedReply(text="complete answer " * 20, chunk_size=16, delay=0.01))
        h.tg.inject_message(DM, "first")
        await h.tg.wait_for(lambda: bool(h.tg.messages_in(DM)))
        h.tg.inject_message(DM, "second")
        await h.answered(2)
        assert not any(e.interrupted for e in h.rec.of(ev.TurnFinished))
        shown = h.texts(DM)
        assert [t for t in shown if t != TEXTS["queued"]] == [
            ("complete answer " * 20).strip(),
            "echo: second",
        ]
        assert shown.count(TEXTS["queued"]) == 1
    finally:
        await h.stop()


async def test_stop_command_interrupts_without_a_follow_up(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ScriptedReply(text="endless " * 300, chunk_size=8, delay=0.01))
    h.tg.inject_message(DM, "go on")
    await h.tg.wait_for(lambda: bool(h.tg.messages_in(DM)))
    h.tg.inject_message(DM, "/stop")
    await h.answered(1)
    await h.tg.wait_for(lambda: "Stopped." in h.texts(DM))
    assert h.rec.of(ev.TurnFinished)[0].interrupted
    assert len(fake_openai.requests) == 1  # /stop itself never reached the model


# ------------------------------------------------------------------ groups, threads, access


async def test_group_messages_need_a_mention_a_reply_or_a_command(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    kw: dict[str, Any] = {"chat_type": "supergroup", "user_id": 7, "chat_title": "Team"}
    h.adapter.settings.require_mention = True  # TELEGRAM_REQUIRE_MENTION (off by default)
    h.tg.inject_message(GROUP, "just chatting among humans", **kw)
    h.tg.inject_message(GROUP, "/help@some_other_bot", **kw)
    h.tg.inject_message(GROUP, "@hermes_test_bot what is two plus two?", **kw)
    await h.answered(1)
    assert last_user_content(fake_openai) == "what is two plus two?"
    [answer] = h.tg.messages_in(GROUP)
    h.tg.inject_message(GROUP, "and times three?", reply_to_message_id=answer.message_id, **kw)
    await h.answered(2)
    assert last_user_content(fake_openai) == "and times three?"
    h.tg.inject_message(GROUP, "/usage@hermes_test_bot", **kw)
    await h.tg.wait_for(lambda: any("This session" in t for t in h.texts(GROUP)))
    assert len(fake_openai.requests) == 2
    sessions = {e.session_key for e in h.rec.of(ev.SessionChanged)}
    assert sessions == {"telegram:group:-100555:@7"}  # the sender's own (per user)

    h.adapter.settings.require_mention = False  # config: answer every group message
    h.tg.inject_message(GROUP, "anyone?", **kw)
    await h.answered(3)
    assert last_user_content(fake_openai) == "anyone?"


async def test_forum_topics_and_reply_threads_are_separate_sessions(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    kw: dict[str, Any] = {"chat_type": "supergroup", "user_id": 7}
    h.adapter.settings.require_mention = False
    h.tg.inject_message(GROUP, "in topic 3", message_thread_id=3, is_topic_message=True, **kw)
    h.tg.inject_message(GROUP, "in topic 4", message_thread_id=4, is_topic_message=True, **kw)
    await h.answered(2)
    other = -100777  # an ordinary supergroup: a reply chain is a thread, not a topic
    root = h.tg.inject_message(other, "root question", **kw)["message"]["message_id"]
    h.tg.inject_message(other, "follow up", message_thread_id=root, reply_to_message_id=root, **kw)
    await h.answered(4)
    keys = {e.session_key for e in h.rec.of(ev.SessionChanged)}
    assert keys == {
        "telegram:group:-100555:3",
        "telegram:group:-100555:4",
        "telegram:group:-100777:@7",  # the group: per user; its threads: shared
        f"telegram:group:-100777:{root}",
    }
    by_thread = {m.message_thread_id: m.plain_text for m in h.tg.messages_in(GROUP)}
    assert by_thread == {3: "echo: in topic 3", 4: "echo: in topic 4"}
    threaded = [m for m in h.tg.messages_in(other) if m.plain_text == "echo: follow up"]
    assert threaded[0].reply_to_message_id == root and threaded[0].message_thread_id is None


async def test_unauthorised_users_never_reach_the_agent(
    hermes_home: Path,
    fake_openai: FakeOpenAI,
    tg: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = telegram_config(
        hermes_home, fake_openai, tg, GATEWAY_ALLOW_ALL_USERS="", TELEGRAM_ALLOWED_USERS="7"
    )
    h = await start_gateway(config, tg)
    try:
        with caplog.at_level(logging.DEBUG):
            h.tg.inject_message(991, "let me in", user_id=991)
            h.tg.inject_message(7, "hello", user_id=7)
            await h.answered(1)
            denied = await h.rec.event(ev.AccessDenied, lambda e: e.user == hash_id("991"))
            dropped = await h.rec.event(ev.MessageDropped, lambda e: e.reason == "unauthorized")
        assert (denied.platform, dropped.session_key) == ("telegram", "telegram:dm:991")
        assert len(fake_openai.requests) == 1
        assert last_user_content(fake_openai) == "hello"
        # (a pairing offer may be sent; an answer from the agent never is)
        assert not any(t.startswith("echo") for t in h.texts(991))
        assert not [e for e in h.rec.of(ev.MessageReceived) if e.session_key.endswith(":991")]
        ours = [r for r in caplog.records if r.name.startswith("hermes_gateway")]
        logged = "\n".join(r.getMessage() for r in ours)
        assert hash_id("991") in logged and "991" not in logged.replace(hash_id("991"), "")
    finally:
        await h.stop()


# ------------------------------------------------------------------ commands, media, progress


async def test_commands_go_through_the_registry_and_fill_the_bot_menu(h: Harness) -> None:
    menu = {c["command"]: c["description"] for c in h.tg.my_commands or []}
    registry = h.gw.runner.commands  # type: ignore[union-attr]
    expected = {s.name.replace("-", "_") for s in registry.specs("telegram")}
    assert set(menu) == expected and "stop" in menu and "quit" not in menu
    assert all(3 <= len(d) <= 256 for d in menu.values())
    h.tg.inject_message(DM, "/status")
    await h.tg.wait_for(lambda: any("Model:" in t for t in h.texts(DM)))
    h.tg.inject_message(DM, "/start")  # Telegram's Start button shows the help
    await h.tg.wait_for(lambda: any("/new" in t and "/stop" in t for t in h.texts(DM)))
    h.tg.inject_message(DM, "/quit")
    await h.tg.wait_for(
        lambda: any("only available in the local terminal" in t for t in h.texts(DM))
    )


async def test_a_burst_of_photos_is_one_turn_with_image_parts(
    h: Harness, fake_openai: FakeOpenAI, hermes_home: Path
) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"fake-jpeg-bytes" * 10
    for i in range(3):
        h.tg.add_file(f"PHOTO{i}", jpeg + bytes([i]), f"photos/file_{i}.jpg")
    for i in range(3):
        update = h.tg.inject_message(
            DM, photo_file_id=f"PHOTO{i}", caption="what are these?" if i == 0 else None
        )
        update["message"]["media_group_id"] = "album-1"  # Telegram marks an album like this
        await asyncio.sleep(0.02)
    h.tg.add_file("DOC1", b"col1,col2\n1,2\n", "documents/data.csv")
    await h.answered(1)
    assert len(fake_openai.requests) == 1
    content = last_user_content(fake_openai)
    assert content[0] == {"type": "text", "text": "what are these?"}
    images = [p for p in content[1:] if p["type"] == "image_url"]
    assert len(images) == 3 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    saved = sorted((hermes_home / "media" / "telegram").rglob("*.jpg"))
    assert len(saved) == 3

    h.tg.inject_message(
        DM,
        document={"file_id": "DOC1", "file_name": "data.csv", "mime_type": "text/csv"},
        caption="sum it",
    )
    await h.answered(2)
    content = last_user_content(fake_openai)
    assert isinstance(content, str) and content.startswith("sum it")
    path = content.split("file: ", 1)[1].split(" (", 1)[0]
    assert await asyncio.to_thread(Path(path).read_bytes) == b"col1,col2\n1,2\n"


@pytest.mark.parametrize(("mode", "lines"), [("all", 2), ("new", 1), ("off", 0)])
async def test_tool_progress_is_one_edited_message(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram, mode: str, lines: int
) -> None:
    config = telegram_config(hermes_home, fake_openai, tg)
    config.platforms.telegram.tool_progress = mode  # type: ignore[assignment]
    config.platforms.telegram.approvals = "dangerous"  # shell asks by default; not the point
    h = await start_gateway(config, tg)
    try:
        fake_openai.enqueue(
            ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo one"})]),
            ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo two"})]),
            ScriptedReply(text="Both commands ran."),
        )
        h.tg.inject_message(DM, "run things")
        await h.answered(1)
        texts = h.texts(DM)
        assert texts[-1] == "Both commands ran."
        progress = texts[:-1]
        if lines == 0:
            assert progress == []
        else:
            [shown] = progress  # one message, edited, whatever the number of tools
            assert shown.count("terminal") == lines and "✓" in shown
    finally:
        await h.stop()


async def test_home_channel_is_a_delivery_target(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    config = telegram_config(hermes_home, fake_openai, tg, TELEGRAM_HOME_CHANNEL="-100999:5")
    h = await start_gateway(config, tg)
    try:
        home = h.adapter.home_source
        assert home is not None and (home.chat_id, home.thread_id) == ("-100999", "5")
        await h.adapter.send(home, "Cron report: **all good**")
        [sent] = h.tg.messages_in(-100999)
        assert sent.message_thread_id == 5 and sent.plain_text == "Cron report: all good"
    finally:
        await h.stop()
