"""``POST /v1/responses``: the Responses API over the agent, with stored chaining.

Why: clients built on the Responses API keep no history themselves; they pass
``previous_response_id``. The chain must give the model exactly the earlier turns (tool calls
included), branch correctly and survive a restart of the gateway.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.integration.api_harness import ApiHarness, start_api


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


def conversation(fake: FakeOpenAI) -> list[tuple[str, str | None]]:
    """What the model was sent last, without the system prompt."""
    return [(m["role"], m.get("content")) for m in fake.requests[-1]["messages"][1:]]


async def test_responses_chain_by_previous_response_id(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    client = api.client()
    first = await client.responses.create(
        model="hermes-agent", input="first", instructions="Only for the first."
    )
    assert first.object == "response" and first.status == "completed"
    assert first.output_text == "echo: first"
    assert first.usage is not None and first.usage.total_tokens > 0
    assert fake_openai.requests[-1]["messages"][0]["content"].endswith("Only for the first.")

    second = await client.responses.create(
        model="hermes-agent", input="second", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id and second.output_text == "echo: second"
    assert conversation(fake_openai) == [
        ("user", "first"),
        ("assistant", "echo: first"),
        ("user", "second"),
    ]
    # Instructions belong to their own request only, as in OpenAI's API.
    assert "Only for the first." not in fake_openai.requests[-1]["messages"][0]["content"]

    # A branch from the first response does not see the second.
    await client.responses.create(
        model="hermes-agent",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "branch"}]}],
        previous_response_id=first.id,
    )
    assert conversation(fake_openai) == [
        ("user", "first"),
        ("assistant", "echo: first"),
        ("user", "branch"),
    ]


async def test_a_chain_survives_a_gateway_restart(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    api = await start_api(hermes_home, fake_openai)
    first = await api.client().responses.create(model="hermes-agent", input="before restart")
    await api.stop()
    api = await start_api(hermes_home, fake_openai)
    try:
        again = await api.client().responses.create(
            model="hermes-agent", input="after restart", previous_response_id=first.id
        )
        assert again.output_text == "echo: after restart"
        assert conversation(fake_openai)[0] == ("user", "before restart")
    finally:
        await api.stop()


async def test_the_agents_own_tools_stay_out_of_the_output_but_in_the_chain(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo 42"}, id="call_t1")]),
        ScriptedReply(text="It printed 42."),
    )
    client = api.client()
    first = await client.responses.create(model="hermes-agent", input="run echo")
    # A client would try to run a function_call item: the agent's runs are not for it.
    assert [item.type for item in first.output] == ["message"]
    assert first.output_text == "It printed 42."
    tool_result = fake_openai.requests[-1]["messages"][-1]
    assert tool_result["role"] == "tool" and "42" in tool_result["content"]

    await client.responses.create(
        model="hermes-agent", input="and now?", previous_response_id=first.id
    )
    roles = [m["role"] for m in fake_openai.requests[-1]["messages"][1:]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]


async def test_a_streamed_response(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    text = "streamed answer, in several pieces ✓"
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=5))
    stream = await api.client().responses.create(model="hermes-agent", input="go", stream=True)
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == text
    final = events[-1].response
    assert final.output_text == text and final.output[0].id == events[2].item.id
    # ... and it is chained like any other.
    await api.client().responses.create(
        model="hermes-agent", input="next", previous_response_id=final.id
    )
    assert conversation(fake_openai)[1] == ("assistant", text)


async def test_store_false_is_not_chainable(api: ApiHarness) -> None:
    client = api.client()
    first = await client.responses.create(model="hermes-agent", input="private", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(
            model="hermes-agent", input="x", previous_response_id=first.id
        )


async def test_malformed_responses_requests_get_400(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    for body, param in [
        ({"model": "hermes-agent"}, "input"),
        ({"input": 5}, "input"),
        ({"input": []}, "input"),
        ({"input": [{"type": "image_generation_call"}]}, "input[0].type"),
        ({"input": [{"role": "assistant", "content": "x"}]}, "input"),
        ({"input": "x", "previous_response_id": 3}, "previous_response_id"),
    ]:
        status, _, answer = await api.post("/v1/responses", body)
        assert status == 400, body
        assert json.loads(answer)["error"]["param"] == param, body
    assert fake_openai.requests == []
