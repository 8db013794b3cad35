"""The API server's defences: keys, malformed and oversized bodies, hang-ups, concurrency.

Why: the server is reachable by anything that can open a socket to it, and a client is free to
send garbage, hang up mid-answer or open a hundred streams. None of it may crash the server,
run the agent for nobody, or answer in anything but OpenAI's error format.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from hermes_gateway import events as ev
from hermes_gateway.models import build_session_key
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply
from tests.integration.api_harness import KEY, ApiHarness, start_api


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


def envelope(body: bytes) -> dict:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_a_wrong_key_gets_openai_401(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await api.client(api_key="wrong-key-0123456789").chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    for headers in ({}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}):
        status, _, body = await api.post("/v1/chat/completions", {}, headers=headers, auth=False)
        assert status == 401 and envelope(body)["code"] == "invalid_api_key"
    status, _, body = await api.get("/v1/models", auth=False)
    assert status == 401 and envelope(body)["code"] == "invalid_api_key"
    assert fake_openai.requests == []  # the agent never ran


@pytest.mark.parametrize(("key", "why"), [("", "is not set"), ("short-key", "has only 9")])
async def test_the_server_refuses_to_start_without_a_long_key(
    hermes_home: Path, fake_openai: FakeOpenAI, key: str, why: str
) -> None:
    api = await start_api(hermes_home, fake_openai, API_SERVER_KEY=key)
    try:
        [*_, last] = api.states()
        assert last.state == "failed"
        assert "API_SERVER_KEY" in last.detail and why in last.detail
        assert api.adapter.port == 0  # nothing listens
        await asyncio.sleep(0.05)
        assert api.states()[-1].state == "failed"  # fatal: no retry loop
    finally:
        await api.stop()


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"{not json", None, "could not parse the JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"model": "hermes-agent"}', "messages", "Missing required parameter"),
        (b'{"messages": "hi"}', "messages", "expected an array"),
        (b'{"messages": []}', "messages", "empty array"),
        (b'{"messages": [42]}', "messages[0]", "expected an object"),
        (b'{"messages": [{"role": "wizard", "content": "x"}]}', "messages[0].role", "wizard"),
        (b'{"messages": [{"role": "user", "content": 5}]}', "messages[0].content", "string"),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            "messages[0].content[0]",
            "Invalid image URL",
        ),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}',
            "messages[0].content[0]",
            "text and images are supported",
        ),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "n": 2, "logprobs": true,'
            b' "frobnicate": 1}',
            "frobnicate",
            "'frobnicate' is not supported",
        ),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "tool_choice":'
            b' {"type": "function", "function": {"name": "ghost"}}}',
            "tool_choice",
            "not one of the tools",
        ),
        (b'{"messages": [{"role": "assistant", "content": "x"}]}', "messages[0].role", "user"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream", "boolean"),
        (b'{"messages": [{"role": "user", "content": "x"}], "model": 7}', "model", "string"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "stream_options": []}',
            "stream_options",
            "object",
        ),
        (b'{"messages": [{"role": "tool", "content": "x"}]}', "messages[0].tool_call_id", None),
    ],
)
async def test_malformed_bodies_get_400_in_openai_format(
    api: ApiHarness, fake_openai: FakeOpenAI, body: bytes, param: str | None, fragment: str | None
) -> None:
    status, _, answer = await api.post("/v1/chat/completions", raw=body)
    assert status == 400
    error = envelope(answer)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    if fragment:
        assert fragment in error["message"]
    assert fake_openai.requests == []


async def test_unknown_paths_and_methods_answer_in_openai_format(api: ApiHarness) -> None:
    status, _, body = await api.get("/v1/nothing-here")
    assert status == 404 and envelope(body)["type"] == "invalid_request_error"
    status, _, body = await api.get("/v1/chat/completions")
    assert status == 405 and "GET" in envelope(body)["message"]


async def test_bad_requests_through_the_sdk(api: ApiHarness) -> None:
    client = api.client()
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(
            model="gpt-99", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "model_not_found" and "hermes-agent" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="hermes-agent",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Hermes-Session-Id": "no spaces: allowed"},
        )
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(
            model="hermes-agent", input="x", previous_response_id="resp_nope"
        )
    assert caught.value.code == "previous_response_not_found"


async def test_an_oversized_body_gets_413(hermes_home: Path, fake_openai: FakeOpenAI) -> None:
    def configure(config) -> None:
        config.platforms.api_server.max_body_bytes = 20_000

    api = await start_api(hermes_home, fake_openai, configure=configure)
    try:
        big = "x" * 50_000
        with pytest.raises(openai.APIStatusError) as caught:
            await api.client().chat.completions.create(
                model="hermes-agent", messages=[{"role": "user", "content": big}]
            )
        assert caught.value.status_code == 413
        assert caught.value.code == "request_too_large"

        # Without a Content-Length (chunked upload) the limit holds as well.
        async def chunks():
            for _ in range(10):
                yield b"x" * 5_000

        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{api.base_url}/chat/completions",
                data=chunks(),
                headers={"Authorization": f"Bearer {KEY}"},
            ) as resp,
        ):
            assert resp.status == 413 and envelope(await resp.read())["code"] == "request_too_large"
        assert fake_openai.requests == []
        # ... and the server is still fine.
        reply = await api.client().chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "small"}]
        )
        assert reply.choices[0].message.content == "echo: small"
    finally:
        await api.stop()


async def test_a_client_that_hangs_up_mid_stream_stops_the_run(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ScriptedReply(text="slow words " * 40, chunk_size=4, delay=0.03))
    stream = await api.client().chat.completions.create(
        model="hermes-agent",
        messages=[{"role": "user", "content": "talk slowly"}],
        stream=True,
        extra_headers={"X-Hermes-Session-Id": "hangup"},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break  # one word is enough
    await stream.close()
    key = build_session_key("api", "dm", "hangup")
    await api.rec.wait_for(lambda: any(e.session_key == key for e in api.rec.of(ev.TurnFinished)))
    finished = [e for e in api.rec.of(ev.TurnFinished) if e.session_key == key][-1]
    assert finished.interrupted and len(finished.text) < len("slow words " * 40)
    await fake_openai.wait_for_disconnects(1)  # the model call itself was cancelled
    assert len(fake_openai.requests) == 1
    assert api.gw.store is not None
    record = await api.gw.store.get_active_session(key)
    assert record is not None
    stored = await api.gw.store.get_messages(record.id)
    assert stored[-1].role == "assistant" and stored[-1].interrupted
    assert api.adapter.inflight == 0


async def test_beyond_the_concurrency_limit_the_answer_is_429(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    def configure(config) -> None:
        config.platforms.api_server.max_concurrency = 2

    api = await start_api(hermes_home, fake_openai, configure=configure)
    try:
        fake_openai.enqueue(
            ScriptedReply(text="a", first_token_delay=0.5),
            ScriptedReply(text="b", first_token_delay=0.5),
        )
        client = api.client()
        busy = [
            asyncio.create_task(
                client.chat.completions.create(
                    model="hermes-agent", messages=[{"role": "user", "content": f"busy {i}"}]
                )
            )
            for i in range(2)
        ]
        await fake_openai.wait_for_requests(2)
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="hermes-agent", messages=[{"role": "user", "content": "one too many"}]
            )
        assert caught.value.response.headers["Retry-After"] == "1"
        assert caught.value.code == "rate_limit_exceeded"
        status, _, _ = await api.get("/v1/models")  # cheap endpoints are not limited
        assert status == 200
        assert [r.choices[0].message.content for r in await asyncio.gather(*busy)] == ["a", "b"]
        assert len(fake_openai.requests) == 2
        # Once they are done there is room again.
        reply = await client.chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "now"}]
        )
        assert reply.choices[0].message.content == "echo: now"
    finally:
        await api.stop()


async def test_a_model_failure_is_an_openai_error_not_a_crash(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ScriptedReply(status=401))  # not retried by the agent
    with pytest.raises(openai.APIStatusError) as caught:
        await api.client().chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 502 and "rejected the API key" in caught.value.message
    fake_openai.enqueue(ScriptedReply(status=401))
    stream = await api.client().chat.completions.create(
        model="hermes-agent", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="rejected the API key"):
        async for _ in stream:
            pass


async def test_while_the_operator_pauses_the_api_clients_are_told_to_come_back(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    runner = api.gw.runner
    assert runner is not None
    runner.set_platform_paused("api", True)
    with pytest.raises(openai.InternalServerError) as caught:
        await api.client().chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 503 and caught.value.code == "paused"
    assert caught.value.response.headers["Retry-After"] == "30"
    status, _, _ = await api.post("/v1/responses", {"input": "x"})
    assert status == 503
    runner.set_platform_paused("api", False)
    runner.set_session_paused(build_session_key("api", "dm", "held"), True)
    status, _, body = await api.post(
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "x"}]},
        headers={"X-Hermes-Session-Id": "held"},
    )
    assert status == 503 and "This session" in envelope(body)["message"]
    assert fake_openai.requests == []
    reply = await api.client().chat.completions.create(
        model="hermes-agent", messages=[{"role": "user", "content": "back"}]
    )
    assert reply.choices[0].message.content == "echo: back"
    assert runner.stats_for("api").received == 1 and runner.stats_for("api").sent == 1
