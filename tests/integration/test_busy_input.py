"""A message arriving while the chat's answer is being written: interrupt, queue or steer
(``display.busy_input_mode``), and ``/queue`` / ``/steer`` whatever the mode.

Through the real Telegram adapter against the fake Bot API and the fake model; the model's
stream is held at a known point (``hold_at``) so "while the turn runs" is a fact, not a
hope. What the model received is read off the fake's requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.runner.busy_ack import TEXTS
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.test_telegram_adapter import Harness, start_gateway, telegram_config

CHAT = 4242


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram) -> AsyncIterator[Harness]:
    harness = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    assert harness.gw.runner is not None
    # Follow-ups here come milliseconds after the turn started: not a burst to stay quiet on.
    harness.gw.runner.busy_acks.burst = 0.0
    yield harness
    await harness.stop()


def roles_and_text(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in request["messages"][1:]]


def users(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


def tool_then_answer(fake: FakeOpenAI) -> None:
    """A turn of two steps: a tool call (held before it streams), then the answer."""
    fake.enqueue(
        ScriptedReply(
            tool_calls=[ToolCallSpec("terminal", {"command": "echo looked"})], hold_at=[0]
        ),
        ScriptedReply(text="Here is what I found."),
    )


def acks(h: Harness) -> list[str]:
    """The acknowledgements of follow-ups sent to the chat (``display.busy_ack_enabled``)."""
    return [t for t in h.texts(CHAT) if t in TEXTS.values()]


def answers(h: Harness) -> list[str]:
    """The chat's messages other than acknowledgements (whose order against the answers is
    the network's: they are sent beside the turn, not in it)."""
    return [t for t in h.texts(CHAT) if t not in TEXTS.values()]


async def held(h: Harness, fake: FakeOpenAI, text: str) -> None:
    """Send ``text`` and wait until its turn's model stream is held."""
    h.tg.inject_message(CHAT, text)
    await fake.wait_until(lambda: fake.held == 1)


@pytest.mark.parametrize("how", ["mode", "command"])
async def test_steer_reaches_the_model_in_the_same_turn(
    h: Harness, fake_openai: FakeOpenAI, how: str
) -> None:
    assert h.gw.runner is not None
    if how == "mode":
        h.gw.config.gateway.busy_mode = "steer"
    tool_then_answer(fake_openai)
    await held(h, fake_openai, "look around")
    rt = h.gw.runner.sessions[f"telegram:dm:{CHAT}"]
    h.tg.inject_message(CHAT, "also the moon" if how == "mode" else "/steer also the moon")
    await h.rec.wait_for(lambda: bool(rt.steering))
    # Told once either way: by the command's reply, or by the acknowledgement of the mode.
    await h.tg.wait_for(lambda: acks(h) == [TEXTS["steered"]])
    fake_openai.release()
    await h.answered(1)
    first, second = fake_openai.requests
    assert users(first) == ["look around"]
    # The second step of the same turn: after the tool's result, the steered message.
    assert [r for r, _ in roles_and_text(second)] == ["user", "assistant", "tool", "user"]
    assert roles_and_text(second)[-1] == ("user", "also the moon")
    assert len(h.rec.of(ev.TurnFinished)) == 1 and len(fake_openai.requests) == 2
    assert answers(h) == ["Here is what I found."] and acks(h) == [TEXTS["steered"]]
    # Stored in that order, and nothing is left unanswered in the inbox.
    stored = await h.gw.store.get_messages(rt.record.id)
    assert [(m.role, m.content) for m in stored if m.role == "user"] == [
        ("user", "look around"),
        ("user", "also the moon"),
    ]
    assert [m.role for m in stored] == ["user", "assistant", "tool", "user", "assistant"]
    assert await h.gw.runner.inbox.open_rows() == []


async def test_a_steer_the_turn_ends_before_taking_is_answered_next(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    assert h.gw.runner is not None
    h.gw.config.gateway.busy_mode = "steer"
    fake_openai.enqueue(ScriptedReply(text="a short answer", hold_at=[1]))
    await held(h, fake_openai, "quick one")
    rt = h.gw.runner.sessions[f"telegram:dm:{CHAT}"]
    h.tg.inject_message(CHAT, "and another thing")
    await h.rec.wait_for(lambda: bool(rt.steering))
    fake_openai.release()
    await h.answered(2)
    assert [users(r)[-1] for r in fake_openai.requests] == ["quick one", "and another thing"]
    finished = h.rec.of(ev.TurnFinished)
    assert [f.interrupted for f in finished] == [False, False]
    assert answers(h) == ["a short answer", "echo: and another thing"]
    assert acks(h) == [TEXTS["steered"]]


@pytest.mark.parametrize("how", ["mode", "command"])
async def test_queue_answers_after_the_running_turn(
    h: Harness, fake_openai: FakeOpenAI, how: str
) -> None:
    assert h.gw.runner is not None
    if how == "mode":
        h.gw.config.gateway.busy_mode = "queue"
    fake_openai.enqueue(ScriptedReply(text="the first answer, whole", hold_at=[1]))
    await held(h, fake_openai, "first")
    rt = h.gw.runner.sessions[f"telegram:dm:{CHAT}"]
    h.tg.inject_message(CHAT, "second" if how == "mode" else "/queue second")
    await h.rec.wait_for(lambda: bool(rt.pending))
    await h.tg.wait_for(lambda: acks(h) == [TEXTS["queued"]])  # the command's or the mode's
    fake_openai.release()
    await h.answered(2)
    finished = h.rec.of(ev.TurnFinished)
    assert [f.interrupted for f in finished] == [False, False]  # nothing was cut short
    assert finished[0].text == "the first answer, whole"
    assert users(fake_openai.requests[1]) == ["first", "second"]
    assert answers(h) == ["the first answer, whole", "echo: second"]
    assert acks(h) == [TEXTS["queued"]]


async def test_interrupt_is_still_the_default(h: Harness, fake_openai: FakeOpenAI) -> None:
    assert h.gw.runner is not None and h.gw.config.gateway.busy_mode == "interrupt"
    fake_openai.enqueue(ScriptedReply(text="a long answer that will be cut", hold_at=[1]))
    await held(h, fake_openai, "first")
    h.tg.inject_message(CHAT, "never mind, this instead")
    await h.answered(2)
    finished = h.rec.of(ev.TurnFinished)
    assert finished[0].interrupted and not finished[1].interrupted
    assert users(fake_openai.requests[1])[-1] == "never mind, this instead"
    assert answers(h)[-1] == "echo: never mind, this instead"
    await h.tg.wait_for(lambda: acks(h) == [TEXTS["interrupted"]])


async def test_a_burst_of_follow_ups_gets_one_acknowledgement(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    """Once per 30 s per chat, as Hermes Agent does: three follow-ups, one line."""
    assert h.gw.runner is not None
    h.gw.config.gateway.busy_mode = "queue"
    fake_openai.enqueue(ScriptedReply(text="the first answer", hold_at=[1]))
    await held(h, fake_openai, "first")
    rt = h.gw.runner.sessions[f"telegram:dm:{CHAT}"]
    for text in ("second", "third", "fourth"):
        h.tg.inject_message(CHAT, text)
    await h.rec.wait_for(lambda: len(rt.pending) == 3)
    fake_openai.release()
    await h.answered(2)  # the queued three are answered together, after the first
    assert acks(h) == [TEXTS["queued"]]
    assert users(fake_openai.requests[-1])[-1] == "second\n\nthird\n\nfourth"


@pytest.mark.parametrize(
    ("mode", "setting"),
    [("queue", {"busy_ack": False}), ("steer", {"busy_steer_ack": False})],
)
async def test_acknowledgements_can_be_turned_off(
    hermes_home: Path,
    fake_openai: FakeOpenAI,
    tg: FakeTelegram,
    mode: str,
    setting: dict[str, bool],
) -> None:
    config = telegram_config(hermes_home, fake_openai, tg)
    config.gateway.busy_mode = mode  # type: ignore[assignment]
    for name, value in setting.items():
        setattr(config.gateway, name, value)
    h = await start_gateway(config, tg)
    try:
        assert h.gw.runner is not None
        fake_openai.enqueue(ScriptedReply(text="the first answer", hold_at=[1]))
        await held(h, fake_openai, "first")
        rt = h.gw.runner.sessions[f"telegram:dm:{CHAT}"]
        h.tg.inject_message(CHAT, "second")
        await h.rec.wait_for(lambda: bool(rt.pending or rt.steering))
        fake_openai.release()
        # The follow-up is answered (queued: its own turn; steered: before the first ends or
        # as the next turn) and, whichever, the chat got no acknowledgement line.
        await h.rec.wait_for(lambda: any("second" in users(r) for r in fake_openai.requests))
        await h.gw.runner.wait_idle(5)
        assert acks(h) == []
    finally:
        await h.stop()


@pytest.mark.parametrize("text", ["just a message", "/steer just a message"])
async def test_a_steer_with_nothing_running_is_a_normal_message(
    h: Harness, fake_openai: FakeOpenAI, text: str
) -> None:
    assert h.gw.runner is not None
    h.gw.config.gateway.busy_mode = "steer"
    h.tg.inject_message(CHAT, text)
    await h.answered(1)
    assert users(fake_openai.requests[0]) == ["just a message"]
    assert h.texts(CHAT) == ["echo: just a message"]  # no "added" reply: nothing was running


async def test_queue_and_steer_need_a_message(h: Harness, fake_openai: FakeOpenAI) -> None:
    h.tg.inject_message(CHAT, "/queue")
    h.tg.inject_message(CHAT, "/steer   ")
    await h.tg.wait_for(lambda: len(h.texts(CHAT)) == 2)
    assert h.texts(CHAT) == ["Usage: /queue <message>", "Usage: /steer <message>"]
    assert fake_openai.requests == []


async def test_an_evicted_chat_reloads_from_the_store_and_a_busy_one_is_kept(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    """Idle eviction (the sweep) through the whole gateway: transparent to the chat."""
    assert h.gw.runner is not None
    registry = h.gw.runner.registry
    h.tg.inject_message(CHAT, "remember the walrus")
    await h.answered(1)
    key = f"telegram:dm:{CHAT}"
    first = registry.sessions[key]
    assert registry.evict_idle(now=first.used_at + registry.idle_evict + 1) == 1
    assert key not in registry.sessions
    fake_openai.enqueue(ScriptedReply(text="noted", hold_at=[0]))
    await held(h, fake_openai, "what do you remember?")
    # Reloaded from the store: the earlier exchange is in the context.
    assert users(fake_openai.requests[-1]) == ["remember the walrus", "what do you remember?"]
    again = registry.sessions[key]
    assert again is not first and again.record.id == first.record.id
    # While its answer is being written, the sweep leaves it alone however old it looks.
    assert registry.evict_idle(now=again.used_at + registry.idle_evict + 1) == 0
    fake_openai.release()
    await h.answered(2)
    assert h.texts(CHAT)[-1] == "noted"


async def test_a_steered_message_cut_off_by_a_stop_is_answered_after_the_restart(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """The turn a stop interrupts stores nothing, the steered message with it: both wait in
    the inbox and are answered once each at the next start."""
    config = telegram_config(hermes_home, fake_openai, tg)
    config.gateway.busy_mode, config.gateway.drain_timeout = "steer", 0.1
    h = await start_gateway(config, tg)
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo x"})], hold_at=[0])
    )
    try:
        await held(h, fake_openai, "look around")
        assert h.gw.runner is not None
        rt = h.gw.runner.sessions[f"telegram:dm:{CHAT}"]
        h.tg.inject_message(CHAT, "also the moon")
        await h.rec.wait_for(lambda: bool(rt.steering))
    finally:
        await h.stop()
    session = rt.record.id
    h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    try:
        await h.answered(2, timeout=10)
        assert h.gw.runner is not None
        stored = await h.gw.store.get_messages(session)
        assert [m.content for m in stored if m.role == "user"] == ["look around", "also the moon"]
        assert await h.gw.runner.inbox.open_rows() == []
        assert h.texts(CHAT)[-2:] == ["echo: look around", "echo: also the moon"]
    finally:
        await h.stop()
