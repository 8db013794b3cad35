"""The gateway pipeline end to end: local platform -> runner -> agent -> store -> events."""

from __future__ import annotations

import asyncio
import json

import pytest

from hermes_gateway import events as ev
from hermes_gateway.access.policy import hash_id
from hermes_gateway.gateway import Gateway
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import ScriptedReply
from tests.helpers import Recorder


class ChatPlatform(PlatformAdapter):
    """A remote platform stand-in that records what the gateway sends it."""

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


@pytest.fixture
async def gw(config):
    config.allowed_users = ["ann"]
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    chat = ChatPlatform()
    await gateway.start(local=True, adapters=[chat])
    gateway.recorder = recorder
    gateway.chat = chat
    yield gateway
    await gateway.stop()


async def say(gw: Gateway, text: str) -> None:
    await gw.local.submit(text)
    await gw.runner.wait_idle()


def replies(gw) -> list[str]:
    return [e.text for e in gw.recorder.of(ev.CommandReplied)]


async def test_message_is_answered_stored_and_published(gw, fake_openai):
    await say(gw, "hello there")
    finished = gw.recorder.of(ev.TurnFinished)
    assert finished[-1].text == "echo: hello there"
    key = gw.local.source.session_key
    record = await gw.store.get_active_session(key)
    messages = await gw.store.get_messages(record.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "hello there"),
        ("assistant", "echo: hello there"),
    ]
    kinds = [type(e).__name__ for e in gw.recorder.events]
    assert kinds.index("MessageReceived") < kinds.index("TurnStarted") < kinds.index("AgentDelta")
    # the second turn sends the whole history, behind one cached system prompt
    await say(gw, "again")
    sent = fake_openai.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]


async def test_help_is_generated_from_the_registry(gw):
    await say(gw, "/help")
    text = replies(gw)[-1]
    for spec in gw.runner.commands.specs("local"):
        assert f"/{spec.name}" in text
    gw.recorder.events.clear()
    await gw.runner.handle(_remote("/help"))
    assert "/quit" not in gw.chat.sent[-1][1], "remote help omits local-only commands"


async def test_unknown_command_suggests(gw):
    await say(gw, "/modle")
    assert "Unknown command /modle" in replies(gw)[-1] and "/model" in replies(gw)[-1]
    await say(gw, "/zzzzzz")
    assert "Try /help" in replies(gw)[-1]
    assert not gw.recorder.of(ev.TurnStarted), "an unknown command never reaches the agent"


async def test_new_and_reset_start_fresh_sessions(gw):
    await say(gw, "first")
    key = gw.local.source.session_key
    old = await gw.store.get_active_session(key)
    await say(gw, "/new")
    new = await gw.store.get_active_session(key)
    assert new.id != old.id and await gw.store.get_messages(new.id) == []
    await say(gw, "/reset")
    assert (await gw.store.get_active_session(key)).id != new.id


async def test_title_sessions_and_resume(gw):
    await say(gw, "remember the plan")
    await say(gw, "/title Plan A")
    assert "Plan A" in replies(gw)[-1]
    await say(gw, "/title")
    assert "Plan A" in replies(gw)[-1]
    await say(gw, "/new")
    await say(gw, "/sessions")
    assert "Plan A" in replies(gw)[-1]
    await say(gw, "/resume plan a")
    assert "Resumed" in replies(gw)[-1]
    rt = gw.runner.sessions[gw.local.source.session_key]
    assert rt.record.title == "Plan A"
    await say(gw, "and now?")
    history = await gw.store.get_messages(rt.record.id)
    assert [m.content for m in history][:2] == ["remember the plan", "echo: remember the plan"]
    await say(gw, "/resume nothing-like-this")
    assert "No session named" in replies(gw)[-1]


async def test_undo_and_retry(gw, fake_openai):
    await say(gw, "one")
    await say(gw, "two")
    await say(gw, "/undo")
    assert "Removed the last exchange" in replies(gw)[-1]
    rt = gw.runner.sessions[gw.local.source.session_key]
    assert [m.content for m in await gw.store.get_messages(rt.record.id)] == ["one", "echo: one"]
    fake_openai.enqueue(ScriptedReply(text="a different answer"))
    await say(gw, "/retry")
    await gw.runner.wait_idle()
    contents = [m.content for m in await gw.store.get_messages(rt.record.id)]
    assert contents == ["one", "a different answer"]
    await say(gw, "/undo")
    await say(gw, "/undo")
    assert "nothing to undo" in replies(gw)[-1].lower()


async def test_status_usage_model_personality(gw, config):
    config.personalities = {"pirate": "Talk like a pirate."}
    config.model.models = ["other-model"]
    await say(gw, "hi")
    await say(gw, "/status")
    assert "fake-model" in replies(gw)[-1] and "local" in replies(gw)[-1]
    await say(gw, "/usage")
    assert "tokens" in replies(gw)[-1]
    await say(gw, "/model other-model")
    await say(gw, "/model")
    assert "other-model" in replies(gw)[-1]
    await say(gw, "/personality pirate")
    await say(gw, "/personality")
    assert "pirate" in replies(gw)[-1]
    await say(gw, "/personality ghost")
    assert "Unknown personality" in replies(gw)[-1]


async def test_model_and_personality_reach_the_request(gw, config, fake_openai):
    config.personalities = {"pirate": "Talk like a pirate."}
    config.model.models = ["other-model"]
    await say(gw, "/model other-model")
    await say(gw, "/personality pirate")
    await say(gw, "ahoy")
    request = fake_openai.requests[-1]
    assert request["model"] == "other-model"
    assert "pirate" in request["messages"][0]["content"]


async def test_commands_run_while_busy_and_stop_interrupts(gw, fake_openai):
    fake_openai.enqueue(ScriptedReply(text="slow " * 300, chunk_size=5, delay=0.02))
    await gw.local.submit("write a lot")
    await gw.recorder.wait_for(lambda: gw.recorder.of(ev.AgentDelta))
    await gw.local.submit("/status")
    assert "Busy:** yes" in replies(gw)[-1]
    await gw.local.submit("/stop")
    assert replies(gw)[-1] == "Stopped."
    await gw.runner.wait_idle(timeout=3)
    finished = gw.recorder.of(ev.TurnFinished)[-1]
    assert finished.interrupted and finished.text
    rt = gw.runner.sessions[gw.local.source.session_key]
    stored = await gw.store.get_messages(rt.record.id)
    assert stored[-1].interrupted and stored[-1].content.strip() == finished.text


async def test_busy_interrupt_mode_answers_pending_together(gw, fake_openai):
    fake_openai.enqueue(ScriptedReply(text="long " * 300, chunk_size=5, delay=0.02))
    await gw.local.submit("first")
    await gw.recorder.wait_for(lambda: gw.recorder.of(ev.AgentDelta))
    await gw.local.submit("second")
    await gw.local.submit("third")
    await gw.runner.wait_idle(timeout=5)
    turns = gw.recorder.of(ev.TurnFinished)
    assert turns[0].interrupted
    assert turns[-1].text == "echo: second\n\nthird"
    assert len(turns) == 2


async def test_busy_queue_mode_does_not_interrupt(gw, config, fake_openai):
    config.gateway.busy_mode = "queue"
    fake_openai.enqueue(ScriptedReply(text="steady answer", chunk_size=2, delay=0.01))
    await gw.local.submit("first")
    await gw.recorder.wait_for(lambda: gw.recorder.of(ev.AgentDelta))
    await gw.local.submit("second")
    await gw.runner.wait_idle(timeout=5)
    turns = gw.recorder.of(ev.TurnFinished)
    assert [t.interrupted for t in turns] == [False, False]
    assert turns[0].text == "steady answer" and turns[1].text == "echo: second"


def _remote(text: str, chat: str = "c1") -> MessageEvent:
    from hermes_gateway.models import MessageEvent

    return MessageEvent(
        text=text, source=SessionSource("testchat", chat, user_id="ann", user_name="ann")
    )


async def test_quit_is_local_only_and_remote_chats_are_separate(gw):
    await gw.runner.handle(_remote("/quit"))
    assert "only available in the local terminal" in gw.chat.sent[-1][1]
    await gw.runner.handle(_remote("hi from afar"))
    await gw.runner.wait_idle()
    assert gw.chat.sent[-1] == ("c1", "echo: hi from afar")
    keys = {e.session_key for e in gw.recorder.of(ev.SessionChanged)}
    assert "testchat:dm:c1" in keys


async def test_model_error_is_delivered_as_words(gw, config, fake_openai):
    fake_openai.enqueue(ScriptedReply(status=400, error_message="context too long"))
    await gw.runner.handle(_remote("hi"))
    await gw.runner.wait_idle()
    assert "context too long" in gw.chat.sent[-1][1]
    assert "Traceback" not in gw.chat.sent[-1][1]


async def test_platform_that_fails_to_start_does_not_stop_others(config, fake_openai):
    from hermes_gateway.platforms.base import FatalPlatformError

    class Broken(ChatPlatform):
        name = "broken"

        async def start(self) -> None:
            raise FatalPlatformError("invalid token")

    gateway = build_gateway(config)
    rec = Recorder(gateway.bus)
    await gateway.start(local=True, adapters=[Broken()])
    await rec.wait_for(lambda: any(e.state == "failed" for e in rec.of(ev.PlatformStatus)))
    await gateway.local.submit("still works")
    await gateway.runner.wait_idle()
    assert rec.of(ev.TurnFinished)[-1].text == "echo: still works"
    await gateway.stop()
    await asyncio.sleep(0)


async def test_unknown_users_are_denied_by_default(gw, fake_openai):
    stranger = SessionSource("testchat", "c9", user_id="mallory", user_name="m")
    await gw.runner.handle(MessageEvent(text="let me in", source=stranger))
    await gw.runner.handle(MessageEvent(text="/status", source=stranger))
    await gw.runner.wait_idle()
    assert fake_openai.requests == [] and gw.chat.sent == []
    assert not gw.recorder.of(ev.MessageReceived)
    # Refused for the right reason, both times (not dropped as empty or unaddressed).
    assert [e.reason for e in gw.recorder.of(ev.MessageDropped)] == ["unauthorized"] * 2
    assert [e.user for e in gw.recorder.of(ev.AccessDenied)] == [hash_id("mallory")] * 2


async def test_unaddressed_group_messages_are_ignored(gw, fake_openai):
    group = SessionSource("testchat", "g1", chat_type="group", user_id="ann")
    await gw.runner.handle(MessageEvent(text="chatting among us", source=group, mentioned=False))
    await gw.runner.wait_idle()
    assert fake_openai.requests == []
    [dropped] = gw.recorder.of(ev.MessageDropped)
    assert (dropped.reason, dropped.session_key) == ("not_mentioned", "testchat:group:g1:@ann")
    assert not gw.recorder.of(ev.AccessDenied) and not gw.recorder.of(ev.MessageReceived)


# --- the operator stepping in (control room) --------------------------------------------------


def _op(text: str, chat: str = "c1") -> MessageEvent:
    return MessageEvent(
        text=text,
        source=SessionSource("testchat", chat, user_id="ann", user_name="ann"),
        from_operator=True,
    )


async def test_operator_message_goes_into_the_chat_as_the_bot(gw, fake_openai):
    await gw.runner.handle(_remote("hello"))
    await gw.runner.wait_idle()
    await gw.runner.handle(_op("Hi Ann, a human here."))
    assert gw.chat.sent[-1] == ("c1", "Hi Ann, a human here.")
    assert len(fake_openai.requests) == 1, "the operator's words do not wake the agent"
    rt = gw.runner.sessions["testchat:dm:c1"]
    stored = await gw.store.get_messages(rt.record.id)
    assert stored[-1].role == "assistant" and stored[-1].meta == {"from_operator": True}
    received = gw.recorder.of(ev.MessageReceived)[-1]
    assert received.from_operator and received.text == "Hi Ann, a human here."
    await gw.runner.handle(_remote("thanks"))
    await gw.runner.wait_idle()
    history = fake_openai.requests[-1]["messages"]
    assert {"role": "assistant", "content": "Hi Ann, a human here."} in history


async def test_operator_commands_act_on_the_chat_without_echo(gw):
    await gw.runner.handle(_remote("hello"))
    await gw.runner.wait_idle()
    sent_before = list(gw.chat.sent)
    old = gw.runner.sessions["testchat:dm:c1"].record.id
    await gw.runner.handle(_op("/new"))
    assert gw.runner.sessions["testchat:dm:c1"].record.id != old
    assert gw.chat.sent == sent_before, "the operator's command reply stays on the screen"
    assert gw.recorder.of(ev.CommandReplied)[-1].session_key == "testchat:dm:c1"


async def test_paused_chat_is_stored_not_answered_until_resumed(gw, fake_openai):
    key = "testchat:dm:c1"
    await gw.runner.handle(_remote("first"))
    await gw.runner.wait_idle()
    gw.runner.set_session_paused(key, True)
    turns = len(gw.recorder.of(ev.TurnStarted))
    await gw.runner.handle(_remote("while paused"))
    await gw.runner.wait_idle()
    # Held, not dropped: shown (MessageReceived) and stored, with no turn started for it.
    held = gw.recorder.of(ev.MessageReceived)[-1]
    assert (held.session_key, held.text) == (key, "while paused")
    assert len(gw.recorder.of(ev.TurnStarted)) == turns
    assert len(fake_openai.requests) == 1
    stored = await gw.store.get_messages(gw.runner.sessions[key].record.id)
    assert stored[-1].content == "while paused"
    gw.runner.set_session_paused(key, False)
    await gw.runner.handle(_remote("back"))
    await gw.runner.wait_idle()
    assert gw.chat.sent[-1] == ("c1", "echo: back")
    assert fake_openai.requests[-1]["messages"][-2]["content"] == "while paused"


async def test_platform_pause_resume_and_counters(gw, fake_openai):
    gw.runner.set_platform_paused("testchat", True)
    assert gw.runner.platform_state["testchat"].state == "paused"
    await gw.runner.handle(_remote("anyone?"))
    await gw.runner.wait_idle()
    assert fake_openai.requests == []
    gw.runner.set_platform_paused("testchat", False)
    assert gw.runner.platform_state["testchat"].state == "connected"
    await gw.runner.handle(_remote("now?"))
    await gw.runner.wait_idle()
    stats = gw.runner.stats["testchat"]
    assert stats.received == 2 and stats.sent == 1


async def test_remote_users_never_see_other_chats(gw, fake_openai):
    await gw.local.submit("my secret plan is lavender")
    await gw.runner.wait_idle()
    await say(gw, "/title Secret")
    await gw.runner.handle(_remote("/sessions"))
    assert "Secret" not in gw.chat.sent[-1][1]
    await gw.runner.handle(_remote("/resume Secret"))
    assert "No session named" in gw.chat.sent[-1][1] and "local" not in gw.chat.sent[-1][1]
    await gw.runner.handle(_remote("/search lavender"))
    assert "only available in the local terminal" in gw.chat.sent[-1][1]
    rt = await gw.runner.runtime(_remote("x").source)
    remote_search = gw.runner._searcher(rt)
    assert await remote_search("lavender", 5) == []
    local_rt = gw.runner.sessions[gw.local.source.session_key]
    assert await gw.runner._searcher(local_rt)("lavender", 5)


async def test_a_lone_surrogate_from_a_chat_does_not_poison_its_session(gw, fake_openai):
    """A chat message with ``\\ud800`` is cleaned on entry: stored, sent to the model and
    kept in memory as U+FFFD, so the next message of that chat is answered normally."""
    source = SessionSource(platform="testchat", chat_id="ann", user_id="ann", user_name="Ann")
    await gw.runner.handle(MessageEvent(text="bad \ud800 text", source=source))
    await gw.runner.wait_idle()
    await gw.runner.handle(MessageEvent(text="and now?", source=source))
    await gw.runner.wait_idle()
    assert [text for _, text in gw.chat.sent] == ["echo: bad \ufffd text", "echo: and now?"]
    for body in fake_openai.requests:
        json.dumps(body).encode("utf-8")  # every request the model got is valid UTF-8
    assert not [e for e in gw.recorder.of(ev.Notice) if e.level == "error"]
