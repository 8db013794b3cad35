"""Automatic session titles: asked once after the first exchange, never over a chosen one."""

from __future__ import annotations

import pytest

from hermes_gateway import events as ev
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import ScriptedReply
from tests.helpers import Recorder


@pytest.fixture
async def gw(config):
    gateway = build_gateway(config)
    gateway.recorder = Recorder(gateway.bus)
    await gateway.start(local=True)
    yield gateway
    await gateway.stop()
    gateway.recorder.close()


async def say(gw, text: str) -> None:
    await gw.local.submit(text)
    await gw.runner.wait_idle()


def titled(gw) -> list[str | None]:
    return [e.title for e in gw.recorder.of(ev.SessionChanged) if e.reason == "titled"]


async def test_first_exchange_titles_the_session_once(gw, fake_openai):
    await say(gw, "how do tides work")
    await gw.recorder.wait_for(lambda: titled(gw) == ["How do tides work"])
    await say(gw, "and the moon?")
    record = await gw.runner.store.get_active_session(gw.local.source.session_key)
    assert record.title == "How do tides work"
    assert len(fake_openai.title_requests) == 1
    request = fake_openai.title_requests[0]
    assert "how do tides work" in request["messages"][-1]["content"]
    assert request["stream"] is False and request["max_tokens"] <= 32


async def test_a_title_another_session_has_gets_a_number(gw, fake_openai):
    await say(gw, "tides please")
    await gw.recorder.wait_for(lambda: titled(gw) == ["Tides please"])
    await say(gw, "/new")
    await say(gw, "tides please")
    await gw.recorder.wait_for(lambda: len(titled(gw)) == 2)
    assert titled(gw) == ["Tides please", "Tides please (2)"]


async def test_a_failing_title_request_leaves_the_session_untitled(gw, fake_openai):
    fake_openai.titler = lambda body: ScriptedReply(status=500, error_message="title model down")
    await say(gw, "hello there")
    await fake_openai.wait_until(lambda: len(fake_openai.title_requests) == 1)
    await gw.recorder.wait_for(
        lambda: not any(n.startswith("title:") for n in gw.runner.background)
    )
    record = await gw.runner.store.get_active_session(gw.local.source.session_key)
    assert record.title is None
    assert not titled(gw)
    assert [e.text for e in gw.recorder.of(ev.TurnFinished)] == ["echo: hello there"]


async def test_auto_title_off_asks_nothing(config, fake_openai):
    config.gateway.auto_title = False
    gateway = build_gateway(config)
    await gateway.start(local=True)
    try:
        await gateway.local.submit("hi")
        await gateway.runner.wait_idle()
        assert not gateway.runner.sessions[gateway.local.source.session_key].title_asked
    finally:
        await gateway.stop()
    assert fake_openai.title_requests == []
