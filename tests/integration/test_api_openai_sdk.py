"""The openai SDK against the API server, for what issue 15 found broken: client tools both
ways, structured output, sampling parameters, images, the Responses object endpoints and
named conversations, CORS, the body limit and an upstream's own error text.

Every test asserts what reached the fake model server (it records each request), not only
what came back: a parameter the gateway dropped would otherwise pass unnoticed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from pydantic import BaseModel

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.integration.api_harness import KEY, ApiHarness, only_loopback, start_api

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    only_loopback(monkeypatch)


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


def offered(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


async def test_a_client_tool_call_goes_back_to_the_client_and_its_result_continues(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}, id="call_w1")]),
        ScriptedReply(text="It is sunny in Paris."),
    )
    client = api.client()
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = await client.chat.completions.create(
        model="hermes-agent", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "call_w1" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    # The model was offered the client's tool beside the agent's own, with its tool_choice.
    sent = fake_openai.requests[-1]
    assert "get_weather" in offered(sent) and "terminal" in offered(sent)
    assert sent["tool_choice"] == "auto"

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21C"},
    ]
    second = await client.chat.completions.create(
        model="hermes-agent", messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == "It is sunny in Paris."
    assert second.choices[0].finish_reason == "stop"
    tail = fake_openai.requests[-1]["messages"][-2:]
    assert tail[0]["tool_calls"][0]["id"] == "call_w1"
    assert tail[1] == {"role": "tool", "content": "sunny, 21C", "tool_call_id": "call_w1"}


async def test_a_streamed_client_tool_call_and_a_continued_session(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        ScriptedReply(
            text="Checking.",
            tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, id="call_s1")],
        ),
        ScriptedReply(text="Snow in Oslo."),
    )
    client = api.client()
    raw = await client.chat.completions.with_raw_response.create(
        model="hermes-agent",
        messages=[{"role": "user", "content": "Oslo?"}],
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    sid = raw.headers["x-hermes-session-id"]
    chunks = [c async for c in raw.parse()]
    with_choice = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choice)
    calls = [tc for c in with_choice for tc in c.choices[0].delta.tool_calls or []]
    assert text == "Checking."
    assert [(tc.id, tc.function and tc.function.name) for tc in calls] == [
        ("call_s1", "get_weather")
    ]
    assert with_choice[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None
    # The stored session continues from the tool result alone (the header names it).
    second = await client.chat.completions.create(
        model="hermes-agent",
        messages=[{"role": "tool", "tool_call_id": "call_s1", "content": "snow"}],
        tools=[WEATHER_TOOL],
        extra_headers={"X-Hermes-Session-Id": sid},
    )
    assert second.choices[0].message.content == "Snow in Oslo."
    roles = [m["role"] for m in fake_openai.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]


class Weather(BaseModel):
    city: str
    temperature: int


async def test_structured_output_with_parse_and_sampling_parameters_reach_the_model(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ScriptedReply(text='{"city": "Rome", "temperature": 24}'))
    parsed = await api.client().chat.completions.parse(
        model="hermes-agent",
        messages=[{"role": "user", "content": "Rome weather as JSON"}],
        response_format=Weather,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop=["END"],
        max_tokens=50,
        n=1,
    )
    assert parsed.choices[0].message.parsed == Weather(city="Rome", temperature=24)
    sent = fake_openai.requests[-1]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "Weather"
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["city", "temperature"]
    assert (sent["temperature"], sent["top_p"], sent["seed"]) == (0.2, 0.9, 7)
    assert (sent["stop"], sent["max_tokens"]) == (["END"], 50)
    assert "n" not in sent


async def test_what_cannot_be_honoured_is_a_400_naming_it(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    client = api.client()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "x"}], n=3
        )
    assert caught.value.param == "n" and "n must be 1" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="hermes-agent",
            messages=[{"role": "user", "content": "x"}],
            logprobs=True,
            temperature="hot",  # type: ignore[arg-type]
        )
    # Every problem at once.
    assert "logprobs" in caught.value.message and "temperature" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="hermes-agent", input="x", tools=[{"type": "web_search"}]
        )
    assert caught.value.param == "tools[0].type"
    assert fake_openai.requests == []


async def test_images_reach_the_model_as_image_parts(
    api: ApiHarness, fake_openai: FakeOpenAI, hermes_home: Path
) -> None:
    client = api.client()
    await client.chat.completions.create(
        model="hermes-agent",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what are these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://images.invalid/cat.jpg", "detail": "low"},
                    },
                ],
            }
        ],
    )
    parts = fake_openai.requests[-1]["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "what are these?"}
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{PNG}"
    # An https image is passed on for the model server to fetch; the gateway never does.
    assert parts[2]["image_url"] == {"url": "https://images.invalid/cat.jpg", "detail": "low"}
    saved = list((hermes_home / "media" / "api").rglob("*.png"))
    assert len(saved) == 1 and saved[0].read_bytes() == base64.b64decode(PNG)

    await client.responses.create(
        model="hermes-agent",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "and this?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                ],
            }
        ],
    )
    parts = fake_openai.requests[-1]["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="hermes-agent",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}
                    ],
                }
            ],
        )
    assert caught.value.param == "messages[0].content[0]"


async def test_a_model_that_cannot_see_gets_a_400_naming_it(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    api = await start_api(
        hermes_home, fake_openai, configure=lambda c: c.model.no_vision.append("fake-model")
    )
    try:
        with pytest.raises(openai.BadRequestError) as caught:
            await api.client().chat.completions.create(
                model="hermes-agent",
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://x.invalid/a.png"}}
                        ],
                    }
                ],
            )
        assert "fake-model" in caught.value.message
        assert caught.value.param == "messages[0].content[0]"
        assert fake_openai.requests == []
    finally:
        await api.stop()


async def test_responses_client_tools_round_trip_stream_and_not(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": WEATHER_TOOL["function"]["parameters"],
    }
    fake_openai.enqueue(
        ScriptedReply(
            tool_calls=[
                ToolCallSpec("terminal", {"command": "echo inside"}, id="call_a"),
                ToolCallSpec("get_weather", {"city": "Lima"}, id="call_b"),
            ]
        ),
        ScriptedReply(text="Lima: mild."),
    )
    client = api.client()
    first = await client.responses.create(
        model="hermes-agent",
        input="Lima?",
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=64,
        text={"format": {"type": "json_object"}},
    )
    # Only the client's own call is an output item; the agent ran its terminal call itself.
    assert [(o.type, getattr(o, "name", None)) for o in first.output] == [
        ("function_call", "get_weather")
    ]
    sent = fake_openai.requests[-1]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["max_tokens"] == 64 and sent["response_format"] == {"type": "json_object"}
    stream = await client.responses.create(
        model="hermes-agent",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_b", "output": "mild"}],
        tools=[tool],  # type: ignore[list-item]
        stream=True,
    )
    events = [e async for e in stream]
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Lima: mild."
    roles = [(m["role"], m.get("tool_call_id")) for m in fake_openai.requests[-1]["messages"]]
    assert roles[-3:] == [("assistant", None), ("tool", "call_a"), ("tool", "call_b")]

    # Streamed, the client call arrives as function_call events the SDK assembles.
    fake_openai.enqueue(ScriptedReply(tool_calls=[ToolCallSpec("get_weather", {"city": "Q"})]))
    stream = await client.responses.create(
        model="hermes-agent",
        input="Q?",
        tools=[tool],  # type: ignore[list-item]
        stream=True,
    )
    events = [e async for e in stream]
    types = [e.type for e in events]
    assert "response.function_call_arguments.done" in types
    assert "response.output_text.delta" not in types
    final = events[-1].response
    assert [o.type for o in final.output] == ["function_call"]
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_responses_get_delete_input_items_and_conversations(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    client = api.client()
    first = await client.responses.create(
        model="hermes-agent", input="remember 7", extra_body={"conversation": "notes"}
    )
    second = await client.responses.create(
        model="hermes-agent", input="what number?", extra_body={"conversation": "notes"}
    )
    # The named conversation chained the second response to the first.
    assert second.previous_response_id == first.id
    texts = [m["content"] for m in fake_openai.requests[-1]["messages"][1:]]
    assert texts == ["remember 7", "echo: remember 7", "what number?"]

    got = await client.responses.retrieve(first.id)
    assert got.id == first.id and got.output_text == "echo: remember 7"
    items = await client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == "what number?"  # type: ignore[union-attr]

    deleted = await client.responses.delete(first.id)
    assert deleted is None or True  # the SDK returns None for this endpoint
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(first.id)


async def test_stored_responses_are_pruned_by_count(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    def keep_two(config: Any) -> None:
        config.platforms.api_server.responses_keep = 2

    api = await start_api(hermes_home, fake_openai, configure=keep_two)
    try:
        client = api.client()
        ids = [
            (await client.responses.create(model="hermes-agent", input=f"n{i}")).id
            for i in range(3)
        ]
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(ids[0])
        assert (await client.responses.retrieve(ids[2])).id == ids[2]
    finally:
        await api.stop()


async def test_an_upstream_error_is_passed_on_with_its_status_and_text(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        ScriptedReply(status=400, error_message="response_format json_schema is not supported")
    )
    with pytest.raises(openai.BadRequestError) as caught:
        await api.client().chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "x"}]
        )
    assert "json_schema is not supported" in caught.value.message
    fake_openai.enqueue(
        *[ScriptedReply(status=500, error_message="CUDA out of memory", retry_after=0)] * 4,
    )
    with pytest.raises(openai.InternalServerError) as failed:
        await api.client().chat.completions.create(
            model="hermes-agent", messages=[{"role": "user", "content": "y"}]
        )
    assert failed.value.status_code == 502 and "CUDA out of memory" in failed.value.message


async def test_cors_preflight_and_headers(hermes_home: Path, fake_openai: FakeOpenAI) -> None:
    api = await start_api(
        hermes_home,
        fake_openai,
        API_SERVER_CORS_ORIGINS="https://app.example, http://localhost:3000",
    )
    try:
        assert api.adapter.settings.cors_origins == ["https://app.example", "http://localhost:3000"]
        async with aiohttp.ClientSession() as http:
            preflight = {
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            }
            async with http.options(api.base_url + "/chat/completions", headers=preflight) as r:
                assert r.status == 204
                assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
                assert "POST" in r.headers["Access-Control-Allow-Methods"]
                assert r.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
            async with http.options(
                api.base_url + "/chat/completions", headers={**preflight, "Origin": "https://evil"}
            ) as r:
                assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
            body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
            headers = {"Authorization": f"Bearer {KEY}", "Origin": "http://localhost:3000"}
            async with http.post(
                api.base_url + "/chat/completions", json=body, headers=headers
            ) as r:
                assert r.status == 200
                assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
                assert "X-Hermes-Session-Id" in r.headers["Access-Control-Expose-Headers"]
                await r.read()
    finally:
        await api.stop()


async def test_the_default_body_limit_takes_a_long_history(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    assert api.adapter.settings.max_body_bytes == 10 * 1024 * 1024
    history: list[Any] = []
    for i in range(40):
        history += [
            {"role": "user", "content": f"q{i} " + "x" * 50_000},
            {"role": "assistant", "content": "ok"},
        ]
    history.append({"role": "user", "content": "last"})
    reply = await api.client().chat.completions.create(model="hermes-agent", messages=history)
    assert reply.choices[0].message.content == "echo: last"
    assert len(fake_openai.requests[-1]["messages"]) == len(history) + 1


async def test_an_answer_cut_by_max_tokens_says_so(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        ScriptedReply(text="This answer is cu", finish_reason="length"),
        ScriptedReply(text="Also cu", finish_reason="length"),
    )
    client = api.client()
    reply = await client.chat.completions.create(
        model="hermes-agent", messages=[{"role": "user", "content": "long"}], max_tokens=5
    )
    assert reply.choices[0].finish_reason == "length"
    response = await client.responses.create(
        model="hermes-agent", input="long", max_output_tokens=5
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


async def test_moving_on_without_a_tool_result_keeps_the_history_valid(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("get_weather", {"city": "Kyiv"}, id="call_k")])
    )
    client = api.client()
    first = await client.responses.create(
        model="hermes-agent",
        input="Kyiv?",
        tools=[{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
    )
    assert first.output[0].type == "function_call"
    await client.responses.create(
        model="hermes-agent", input="never mind, hello", previous_response_id=first.id
    )
    sent = [(m["role"], m.get("tool_call_id")) for m in fake_openai.requests[-1]["messages"]]
    # Every call has its result before the next user message (model servers insist).
    assert sent[-3:] == [("assistant", None), ("tool", "call_k"), ("user", None)]


async def test_tool_progress_on_request_leaves_the_sdk_loops_intact(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    def tool_turn() -> None:
        fake_openai.enqueue(
            ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo p"})]),
            ScriptedReply(text="done."),
        )

    client = api.client(default_headers={"X-Hermes-Tool-Progress": "true"})
    tool_turn()
    stream = await client.chat.completions.create(
        model="hermes-agent", messages=[{"role": "user", "content": "go"}], stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "done."
    progress = [(c.model_extra or {}).get("hermes_tool_progress") for c in chunks]
    assert [p["status"] for p in progress if p] == ["running", "completed"]

    tool_turn()
    events = [
        e
        async for e in await client.responses.create(model="hermes-agent", input="go", stream=True)
    ]
    kinds = [e.type for e in events]
    assert kinds.count("hermes.tool.progress") == 2 and kinds[-1] == "response.completed"
    assert events[-1].response.output_text == "done."  # type: ignore[union-attr]

    tool_turn()  # not asked: no progress events at all
    plain = [
        e.type
        async for e in await api.client().responses.create(
            model="hermes-agent", input="go", stream=True
        )
    ]
    assert "hermes.tool.progress" not in plain
