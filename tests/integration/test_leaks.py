"""What a remote chat (or a log) must never see: credentials, other chats' sessions, any model.

Why: a red-team pass found ``/status`` and model errors showing the endpoint with its
credentials, ``/title`` naming another chat's session id, and ``/model`` taking any name.
Each test sends what a hostile or merely curious user would, through the real runner.
"""

from __future__ import annotations

import pytest

from hermes_gateway import events as ev
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder
from tests.integration.test_runner_commands import ChatPlatform, say

USER, PASSWORD, QUERY_KEY = "alice", "hunter2-password", "qk-0123456789abcdef"


def credentialed(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{USER}:{PASSWORD}@{rest}?api_key={QUERY_KEY}&region=eu"


def leaked(text: str) -> list[str]:
    return [s for s in (PASSWORD, f"{USER}:", QUERY_KEY, "test-key") if s in text]


def dm(text: str, chat: str = "c1", user: str = "ann") -> MessageEvent:
    return MessageEvent(text=text, source=SessionSource("testchat", chat, user_id=user))


def in_group(text: str) -> MessageEvent:
    group = SessionSource("testchat", "g1", chat_type="group", user_id="ann")
    return MessageEvent(text=text, source=group, mentioned=True)


@pytest.fixture
async def gw(config):
    config.allowed_users = ["ann", "bob"]
    gateway = build_gateway(config)
    gateway.recorder = Recorder(gateway.bus)
    gateway.chat = ChatPlatform()
    await gateway.start(local=True, adapters=[gateway.chat])
    yield gateway
    await gateway.stop()


async def ask(gw, event: MessageEvent) -> str:
    await gw.runner.handle(event)
    await gw.runner.wait_idle()
    return gw.chat.sent[-1][1]


async def test_status_in_a_dm_shows_the_endpoint_without_credentials(gw, config, fake_openai):
    config.model.base_url = credentialed(fake_openai.base_url)
    answer = await ask(gw, dm("/status"))
    assert "127.0.0.1" in answer and "region=eu" in answer
    assert leaked(answer) == []
    await say(gw, "/status")
    assert leaked(gw.recorder.of(ev.CommandReplied)[-1].text) == []


async def test_status_in_a_group_keeps_endpoint_and_session_private(gw, config, fake_openai):
    answer = await ask(gw, in_group("/status"))
    assert "fake-model" in answer
    assert "127.0.0.1" not in answer and "testchat:group" not in answer
    assert "Session" not in answer


async def test_model_errors_show_no_credentials_in_chat_or_events(gw, config):
    # Nothing listens on port 9: "could not reach" names the endpoint.
    config.model.base_url = credentialed("http://127.0.0.1:9/v1")
    config.model.max_retries = 0
    answer = await ask(gw, dm("hi"))
    assert "could not reach" in answer.lower()
    assert leaked(answer) == []
    texts = [str(e) for e in gw.recorder.events]
    assert [t for t in texts if leaked(t)] == []


async def test_title_in_use_does_not_name_the_other_chats_session(gw):
    await ask(gw, dm("/title Project Falcon", chat="c1"))
    theirs = (await gw.store.get_active_session(dm("x", chat="c1").source.session_key)).id
    answer = await ask(gw, dm("/title project falcon", chat="c2", user="bob"))
    assert theirs not in answer
    assert "already used" in answer


async def test_resume_and_sessions_see_only_this_chats_sessions(gw):
    await ask(gw, dm("/title Alpha plans", chat="c1"))
    theirs = (await gw.store.get_active_session(dm("x", chat="c1").source.session_key)).id
    await ask(gw, dm("/title Alpha notes", chat="c2", user="bob"))
    await ask(gw, dm("/new", chat="c2", user="bob"))
    # Bob's "Alpha" prefix means his own session, whatever other chats are called.
    assert "Resumed “Alpha notes”" in await ask(gw, dm("/resume Alpha", chat="c2", user="bob"))
    answer = await ask(gw, dm(f"/resume {theirs}", chat="c2", user="bob"))
    assert "No session named" in answer and "Alpha plans" not in answer  # (ids are random hex)
    listing = await ask(gw, dm("/sessions", chat="c2", user="bob"))
    assert "Alpha notes" in listing and "Alpha plans" not in listing


async def test_model_must_be_configured_or_listed_by_the_server(
    gw, config, fake_openai: FakeOpenAI
):
    config.model.models = ["configured-model"]
    fake_openai.models.append("served-model")
    refused = await ask(gw, dm("/model gpt-imaginary"))
    assert "Unknown model" in refused and "fake-model" in refused and "served-model" in refused
    rt = await gw.runner.runtime(dm("x").source)
    assert rt.model_name in (None, "", "fake-model")
    assert "set to **served-model**" in await ask(gw, dm("/model served-model"))
    assert "set to **configured-model**" in await ask(gw, dm("/model configured-model"))
