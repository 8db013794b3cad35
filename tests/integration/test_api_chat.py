"""The OpenAI-compatible API, driven by the openai SDK itself (async and sync, stream and not).

Why: any OpenAI client must be able to talk to the whole agent. These pin the wire format the
SDK depends on, that API turns are stored and published like any chat's (so they show live in
the TUI), that X-Hermes-Session-Id continues a stored session, and that tool runs stream as a
custom event that the SDK passes over.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from hermes_gateway.models import build_session_key
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.integration.api_harness import ApiHarness, sse_frames, start_api


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


async def test_a_completion_is_answered_stored_and_published(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    raw = await api.client().chat.completions.with_raw_response.create(
        model="hermes-agent",
        messages=[
            {"role": "system", "content": "Answer like a pirate."},
            {"role": "user", "content": "hello there"},
        ],
    )
    reply = raw.parse()
    assert reply.object == "chat.completion" and reply.model == "hermes-agent"
    assert reply.choices[0].message.content == "echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens > 0

    sid = raw.headers["x-hermes-session-id"]
    key = build_session_key("api", "dm", sid)
    # The client's system prompt joins the agent's own for this request.
    system = fake_openai.requests[-1]["messages"][0]
    assert system["role"] == "system" and system["content"].endswith("Answer like a pirate.")
    assert "You are Hermes" in system["content"]
    # Stored and published like any chat, so the TUI's Sessions pane shows it live.
    assert api.gw.store is not None
    record = await api.gw.store.get_active_session(key)
    assert record is not None and record.platform == "api"
    stored = await api.gw.store.get_messages(record.id)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "hello there"),
        ("assistant", "echo: hello there"),
    ]
    kinds = [type(e) for e in api.rec.events if getattr(e, "session_key", None) == key]
    for kind in (ev.SessionChanged, ev.MessageReceived, ev.TurnStarted, ev.AgentDelta):
        assert kind in kinds
    assert kinds[-1] is ev.TurnFinished
    # A one-off request does not keep a live session in memory.
    assert api.gw.runner is not None and key not in api.gw.runner.sessions


async def test_a_streamed_completion_reassembles_exactly(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    text = "Streaming, exactly: ünïcødé ✓, `code`, new\nlines and 𝄞 astral characters. " * 3
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=7))
    stream = await api.client().chat.completions.create(
        model="hermes-agent",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


async def test_the_stream_wire_format(api: ApiHarness) -> None:
    status, headers, body = await api.post(
        "/v1/chat/completions",
        {"model": "hermes-agent", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    frames = sse_frames(body)
    assert frames[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in frames[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all("usage" not in c for c in chunks)  # only with stream_options.include_usage
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "echo: hi"


async def test_the_sync_client_streams_and_completes(api: ApiHarness) -> None:
    def talk() -> tuple[str, str]:
        with api.sync_client() as client:
            reply = client.chat.completions.create(
                model="hermes-agent", messages=[{"role": "user", "content": "sync one"}]
            )
            stream = client.chat.completions.create(
                model="hermes-agent",
                messages=[{"role": "user", "content": "sync two"}],
                stream=True,
            )
            streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            return reply.choices[0].message.content or "", streamed

    # The sync client blocks its thread; the gateway's loop must keep running meanwhile.
    assert await asyncio.to_thread(talk) == ("echo: sync one", "echo: sync two")


@pytest.mark.parametrize("ask", ["field", "header"])
async def test_tool_progress_streams_only_when_asked_in_chunks_sdks_read_as_nothing(
    api: ApiHarness, fake_openai: FakeOpenAI, ask: str
) -> None:
    fake_openai.enqueue(
        ScriptedReply(
            text="Let me look.", tool_calls=[ToolCallSpec("terminal", {"command": "echo tooled"})]
        ),
        ScriptedReply(text="The command printed tooled."),
    )
    body: dict[str, object] = {"messages": [{"role": "user", "content": "run it"}], "stream": True}
    headers = {}
    if ask == "field":
        body["hermes_tool_progress"] = True
    else:
        headers["X-Hermes-Tool-Progress"] = "true"
    status, _, raw = await api.post("/v1/chat/completions", body, headers=headers)
    assert status == 200
    frames = sse_frames(raw)
    chunks = [json.loads(d) for e, d in frames if d != "[DONE]"]
    assert all(e is None for e, _ in frames)  # no named events: every parser takes them
    # Every chunk has a choice (the canonical `chunk.choices[0].delta.content` loop holds).
    assert all(len(c["choices"]) == 1 for c in chunks)
    progress = [c["hermes_tool_progress"] for c in chunks if "hermes_tool_progress" in c]
    assert [(p["tool"], p["status"]) for p in progress] == [
        ("terminal", "running"),
        ("terminal", "completed"),
    ]
    assert progress[0]["label"] == progress[1]["label"] == "echo tooled"
    assert progress[1]["summary"]
    assert all(c["choices"][0]["delta"] == {} for c in chunks if "hermes_tool_progress" in c)
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert content == "Let me look.\n\nThe command printed tooled."
    # The model got the tool's output in its second request.
    tool_msg = fake_openai.requests[-1]["messages"][-1]
    assert tool_msg["role"] == "tool" and "tooled" in tool_msg["content"]
    finished = [e for e in api.rec.of(ev.ToolFinished) if e.name == "terminal"]
    assert finished and finished[-1].ok


async def test_the_sdk_passes_over_tool_progress(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo hi"})]),
        ScriptedReply(text="done"),
    )
    stream = await api.client().chat.completions.create(
        model="hermes-agent", messages=[{"role": "user", "content": "go"}], stream=True
    )
    # The canonical loop, without an `if c.choices` guard: nothing about the agent's tool
    # run reaches a client that did not ask for it.
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "done"  # no blank line left over from the tool step
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    assert not any((c.model_extra or {}).get("hermes_tool_progress") for c in chunks)


async def test_a_session_continues_by_header(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    client = api.client()
    first = await client.chat.completions.with_raw_response.create(
        model="hermes-agent", messages=[{"role": "user", "content": "my name is Ada"}]
    )
    sid = first.headers["x-hermes-session-id"]
    second = await client.chat.completions.with_raw_response.create(
        model="hermes-agent",
        messages=[{"role": "user", "content": "what is my name?"}],
        extra_headers={"X-Hermes-Session-Id": sid},
    )
    assert second.headers["x-hermes-session-id"] == sid
    sent = [(m["role"], m["content"]) for m in fake_openai.requests[-1]["messages"][1:]]
    assert sent == [
        ("user", "my name is Ada"),
        ("assistant", "echo: my name is Ada"),
        ("user", "what is my name?"),
    ]
    # A client-chosen id works too; the history then comes from the store, not the request.
    for text in ("one", "two"):
        await client.chat.completions.create(
            model="hermes-agent",
            messages=[
                {"role": "user", "content": "ignored, the store has the history"},
                {"role": "assistant", "content": "ignored"},
                {"role": "user", "content": text},
            ],
            extra_headers={"X-Hermes-Session-Id": "my-chat.1"},
        )
    sent = [m["content"] for m in fake_openai.requests[-1]["messages"][1:]]
    assert sent == ["one", "echo: one", "two"]
    assert api.gw.store is not None
    record = await api.gw.store.get_active_session(build_session_key("api", "dm", "my-chat.1"))
    assert record is not None and record.message_count == 4


async def test_stateless_requests_use_the_messages_sent_as_history(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    await api.client().chat.completions.create(
        model="hermes-agent",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "first"}]},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "second"},
        ],
    )
    sent = [(m["role"], m["content"]) for m in fake_openai.requests[-1]["messages"][1:]]
    assert sent == [("user", "first"), ("assistant", "an answer"), ("user", "second")]


async def test_models_lists_the_agent_and_the_configured_models(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    def configure(config) -> None:
        config.model.models = ["other-model"]

    api = await start_api(hermes_home, fake_openai, configure=configure)
    try:
        client = api.client()
        models = await client.models.list()
        assert [m.id for m in models.data] == ["hermes-agent", "fake-model", "other-model"]
        assert (await client.models.retrieve("other-model")).id == "other-model"
        # A configured model can be asked for by name; the agent then uses it.
        await client.chat.completions.create(
            model="other-model", messages=[{"role": "user", "content": "x"}]
        )
        assert fake_openai.requests[-1]["model"] == "other-model"
    finally:
        await api.stop()


async def test_health_needs_no_key(api: ApiHarness) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(api.root + "/health") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "ok"


async def test_concurrent_requests_on_one_session_take_turns(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    """Two clients on one session id: the turns run one after another, history intact."""
    client = api.client()
    headers = {"X-Hermes-Session-Id": "shared-1"}
    fake_openai.enqueue(ScriptedReply(text="slow first answer", chunk_size=2, delay=0.01))
    first, second = await asyncio.gather(
        client.chat.completions.create(
            model="hermes-agent",
            messages=[{"role": "user", "content": "first"}],
            extra_headers=headers,
        ),
        client.chat.completions.create(
            model="hermes-agent",
            messages=[{"role": "user", "content": "second"}],
            extra_headers=headers,
        ),
    )
    answers = sorted([first.choices[0].message.content, second.choices[0].message.content])
    assert answers[1] == "slow first answer" and answers[0].startswith("echo: ")
    assert api.gw.store is not None
    record = await api.gw.store.get_active_session(build_session_key("api", "dm", "shared-1"))
    stored = await api.gw.store.get_messages(record.id)
    roles = [m.role for m in stored]
    assert roles == ["user", "assistant", "user", "assistant"], roles
