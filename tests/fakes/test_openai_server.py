"""Tests of the fake OpenAI server, driven by the real openai SDK over 127.0.0.1.

The fake is only useful if the real SDK accepts its wire format exactly, so every test goes
through ``AsyncOpenAI``/``OpenAI`` (or raw HTTP where the SDK cannot send the input).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="test-key", max_retries=0, timeout=5
    ) as sdk:
        yield sdk


async def test_streaming_text_is_reassembled_exactly(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    text = 'Hello, wörld! 🚀\nLine two with `code` and "quotes".'
    fake.enqueue(ScriptedReply(text=text, chunk_size=3))

    stream = await client.chat.completions.create(model="gpt-x", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-x" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(pieces) == math.ceil(len(text) / 3)
    assert "".join(pieces) == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert fake.requests == [{"model": "gpt-x", "messages": USER, "stream": True}]
    assert fake.active_streams == 0 and fake.disconnects == 0


async def test_tool_calls_are_reassembled_by_the_sdk(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    args = {"city": "Zürich", "days": 3, "units": ["c", "f"], "nested": {"a": None}}
    fake.enqueue(
        ScriptedReply(
            text="Let me check.",
            tool_calls=[
                ToolCallSpec("get_weather", args, id="call_abc"),
                ToolCallSpec("ping", '{"x": 1}'),
            ],
            chunk_size=4,
        )
    )

    async with client.chat.completions.stream(model="m", messages=USER) as stream:
        completion = await stream.get_final_completion()

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    first, second = choice.message.tool_calls or []
    assert first.id == "call_abc"
    assert first.function.name == "get_weather"
    assert json.loads(first.function.arguments) == args
    assert second.function.name == "ping"
    assert second.function.arguments == '{"x": 1}'
    assert second.id.startswith("call_") and second.id != first.id


async def test_tool_call_only_stream_has_null_content(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.enqueue(ScriptedReply(tool_calls=[ToolCallSpec("noop", {})]))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.content is None
    header = chunks[1].choices[0].delta.tool_calls[0]
    assert (header.index, header.type, header.function.name) == (0, "function", "noop")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_non_streaming_completion(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.enqueue(
        ScriptedReply(
            text="done",
            tool_calls=[ToolCallSpec("save", {"path": "/tmp/x"})],
            prompt_tokens=11,
            completion_tokens=7,
            finish_reason="stop",
        )
    )
    completion = await client.chat.completions.create(model="m", messages=USER)

    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert message.role == "assistant" and message.content == "done"
    assert json.loads(message.tool_calls[0].function.arguments) == {"path": "/tmp/x"}
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 7)
    assert completion.usage.total_tokens == 18


async def test_include_usage_sends_final_usage_chunk(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    text = "x" * 40
    fake.enqueue(ScriptedReply(text=text))
    messages = [{"role": "user", "content": "y" * 80}]
    stream = await client.chat.completions.create(
        model="m", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (20, 10)
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_queue_is_fifo_then_echo(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.enqueue(ScriptedReply(text="one"), ScriptedReply(text="two"))
    parts = [
        {"type": "text", "text": "look at"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this"},
    ]
    answers = []
    for content in ("a", "b", parts):
        messages = [{"role": "user", "content": content}]
        completion = await client.chat.completions.create(model="m", messages=messages)
        answers.append(completion.choices[0].message.content)

    assert answers == ["one", "two", "echo: look at\nthis"]
    bodies = await fake.wait_for_requests(3, timeout=1)
    assert [b["messages"][0]["content"] for b in bodies] == ["a", "b", parts]
    assert fake.queued == 0


async def test_wrong_api_key_raises_authentication_error(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="wrong-key", max_retries=0, timeout=5
    ) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.type == "invalid_request_error"
    assert fake.requests == []


async def test_auth_disabled_accepts_any_key() -> None:
    async with (
        FakeOpenAI(api_key=None, models=["a", "b"]) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="anything", max_retries=0) as sdk,
    ):
        models = await sdk.models.list()
        assert [m.id for m in models.data] == ["a", "b"]
        assert (await sdk.models.retrieve("b")).id == "b"
        with pytest.raises(openai.NotFoundError):
            await sdk.models.retrieve("c")


async def test_rate_limit_with_retry_after(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.enqueue(ScriptedReply(status=429, retry_after=2))
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=USER)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "2"


async def test_sdk_retries_after_short_retry_after(fake: FakeOpenAI) -> None:
    fake.enqueue(ScriptedReply(status=429, retry_after=0.05), ScriptedReply(text="ok"))
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="test-key", max_retries=1, timeout=5
    ) as sdk:
        completion = await sdk.chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "ok"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors(fake: FakeOpenAI, client: openai.AsyncOpenAI, status: int) -> None:
    fake.enqueue(ScriptedReply(status=status, error_message="boom"))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=USER, stream=True)
    assert caught.value.status_code == status
    assert caught.value.message.endswith("boom")
    assert caught.value.type == "server_error"


async def test_malformed_json_gets_400_envelope(fake: FakeOpenAI) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(
            f"{fake.base_url}/chat/completions",
            content=b'{"model": "m", "messages": [',
            headers={"Authorization": "Bearer test-key", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "could not parse the JSON body" in error["message"]
    assert fake.requests == []


async def test_stall_after_times_out_the_client(fake: FakeOpenAI) -> None:
    fake.enqueue(ScriptedReply(text="partial answer", chunk_size=7, stall_after=1))
    received: list[str] = []
    started = time.perf_counter()
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="test-key", max_retries=0, timeout=0.3
    ) as sdk:
        stream = await sdk.chat.completions.create(model="m", messages=USER, stream=True)
        with pytest.raises(openai.APITimeoutError):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert time.perf_counter() - started < 2
    assert "".join(received) == "partial"
    await fake.wait_for_disconnects(1, timeout=2)
    await fake.wait_until(lambda: fake.active_streams == 0, timeout=2)


async def test_stop_releases_a_stalled_stream(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.enqueue(ScriptedReply(text="abc", stall_after=0))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"
    started = time.perf_counter()
    await fake.stop()
    with pytest.raises(openai.APIConnectionError):
        await stream.__anext__()
    assert time.perf_counter() - started < 1
    assert fake.disconnects == 0


async def test_hold_at_stops_the_stream_until_released(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.enqueue(ScriptedReply(text="abcdef", chunk_size=1, hold_at=[2, 4]))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    got = [await stream.__anext__() for _ in range(3)]  # role chunk, "a", "b"
    assert [c.choices[0].delta.content for c in got[1:]] == ["a", "b"]
    await fake.wait_until(lambda: fake.held == 1 and fake.holds_reached == 1)
    fake.release()
    got = [await stream.__anext__() for _ in range(2)]
    assert [c.choices[0].delta.content for c in got] == ["c", "d"]
    await fake.wait_until(lambda: fake.held == 1 and fake.holds_reached == 2)
    fake.release()
    rest = [c.choices[0].delta.content async for c in stream]
    assert rest[:2] == ["e", "f"]
    assert fake.held == 0 and fake.disconnects == 0


async def test_delays_are_honoured(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.enqueue(ScriptedReply(text="abcdef", chunk_size=1, first_token_delay=0.15, delay=0.03))
    started = time.perf_counter()
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    arrivals = []
    async for chunk in stream:
        if chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter() - started)
    # Lower bounds are exact (the server cannot send earlier); upper bounds are loose for CI.
    assert 0.15 <= arrivals[0] < 1.5
    assert arrivals[-1] >= 0.15 + 5 * 0.03
    assert arrivals[-1] < 2.0

    fake.enqueue(ScriptedReply(text="slow", delay=0.2))
    started = time.perf_counter()
    await client.chat.completions.create(model="m", messages=USER)
    assert 0.2 <= time.perf_counter() - started < 1.2


async def test_disconnect_is_counted_when_client_closes_early(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.enqueue(ScriptedReply(text="x" * 200, chunk_size=2, delay=0.01))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    await stream.__anext__()
    await stream.__anext__()
    assert fake.active_streams == 1
    await stream.close()
    await fake.wait_for_disconnects(1, timeout=2)
    await fake.wait_until(lambda: fake.active_streams == 0, timeout=2)
    assert fake.disconnects == 1


def test_threaded_mode_with_sync_client() -> None:
    with FakeOpenAI() as fake:
        fake.enqueue(ScriptedReply(text="streamed in a thread", chunk_size=5))
        with openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as sdk:
            stream = sdk.chat.completions.create(model="m", messages=USER, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream)
            completion = sdk.chat.completions.create(model="m", messages=USER)
        assert text == "streamed in a thread"
        assert completion.choices[0].message.content == "echo: hi"
        assert len(fake.wait_for_requests_sync(2, timeout=1)) == 2


async def test_standalone_process_serves_script_and_control(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                {"text": "scripted"},
                {"tool_calls": [{"name": "f", "arguments": {"a": 1}, "id": "call_1"}]},
            ]
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.openai_server",
        "--port",
        "0",
        "--script",
        str(script),
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=10)).decode().strip()
        assert line.startswith("READY http://127.0.0.1:") and line.endswith("/v1")
        base_url = line.split(" ", 1)[1]
        async with (
            openai.AsyncOpenAI(base_url=base_url, api_key="test-key", max_retries=0) as sdk,
            httpx.AsyncClient(timeout=5) as http,
        ):
            first = await sdk.chat.completions.create(model="m", messages=USER)
            second = await sdk.chat.completions.create(model="m", messages=USER)
            third = await sdk.chat.completions.create(model="m", messages=USER)
            control = base_url.removesuffix("/v1") + "/_control"
            added = await http.post(f"{control}/enqueue", json=[{"text": "added later"}])
            assert added.json() == {"queued": 1}
            bad = await http.post(f"{control}/enqueue", json=[{"txt": "typo"}])
            assert bad.status_code == 400
            fourth = await sdk.chat.completions.create(model="m", messages=USER, stream=True)
            fourth_text = "".join([c.choices[0].delta.content or "" async for c in fourth])
            requests = (await http.get(f"{control}/requests")).json()

        assert first.choices[0].message.content == "scripted"
        assert second.choices[0].message.tool_calls[0].function.arguments == '{"a": 1}'
        assert third.choices[0].message.content == "echo: hi"
        assert fourth_text == "added later"
        assert len(requests) == 4 and requests[3]["stream"] is True

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_prompt_over_the_window_gets_openais_400(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.context_length = 100
    listed = await client.models.list()
    assert listed.data[0].model_extra["context_length"] == 100  # as OpenRouter reports it
    ok = [{"role": "user", "content": "x" * 300}]  # 75 + 4 tokens
    await client.chat.completions.create(model="fake-model", messages=ok)
    too_long = [{"role": "user", "content": "x" * 400}]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="fake-model", messages=too_long)
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 100 tokens" in str(caught.value)
    assert fake.overflows == 1
    fake.report_window = False
    assert "context_length" not in ((await client.models.list()).data[0].model_extra or {})


async def test_control_requests_returns_the_last_n(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    """A benchmark asks for the last request only: the whole recording can be huge."""
    for word in ("one", "two", "three"):
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": word}]
        )
    async with httpx.AsyncClient() as http:
        base = fake.base_url.removesuffix("/v1")
        last = (await http.get(f"{base}/_control/requests?last=2")).json()
        everything = (await http.get(f"{base}/_control/requests")).json()
    assert [r["messages"][0]["content"] for r in last] == ["two", "three"]
    assert len(everything) == 3
