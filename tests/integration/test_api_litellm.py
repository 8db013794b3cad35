"""The litellm SDK against the API server: completion, stream and tools.

litellm reads its model cost map from the internet unless told to use its bundled copy
(``LITELLM_LOCAL_MODEL_COST_MAP``), set before it is imported; every connection off
127.0.0.1 fails the test.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

litellm = pytest.importorskip("litellm")

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec  # noqa: E402
from tests.integration.api_harness import KEY, ApiHarness, only_loopback, start_api  # noqa: E402

litellm.telemetry = False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    only_loopback(monkeypatch)


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


def options(api: ApiHarness) -> dict[str, Any]:
    return {
        "model": "openai/hermes-agent",
        "api_base": api.base_url,
        "api_key": KEY,
        "timeout": 10,
        "num_retries": 0,
    }


async def test_completion_and_stream_over_an_agent_tool_turn(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo via-litellm"})]),
        ScriptedReply(text="It printed via-litellm."),
    )
    reply = await litellm.acompletion(
        messages=[{"role": "user", "content": "run echo"}], max_tokens=40, **options(api)
    )
    assert reply.choices[0].message.content == "It printed via-litellm."
    assert not reply.choices[0].message.tool_calls
    assert fake_openai.requests[0]["max_tokens"] == 40

    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo again"})]),
        ScriptedReply(text="Streamed: again.", chunk_size=3),
    )
    stream = await litellm.acompletion(
        messages=[{"role": "user", "content": "once more"}], stream=True, **options(api)
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == "Streamed: again."
    tool = fake_openai.requests[-1]["messages"][-1]
    assert tool["role"] == "tool" and "again" in tool["content"]


async def test_client_tools_round_trip(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a word up.",
                "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
            },
        }
    ]
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("lookup", {"word": "hermes"}, id="call_l")]),
        ScriptedReply(text="A messenger god."),
    )
    messages: list[Any] = [{"role": "user", "content": "define hermes"}]
    first = await litellm.acompletion(messages=messages, tools=tools, **options(api))
    call = first.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name) == ("call_l", "lookup")
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_l", "content": "Greek god of messengers"},
    ]
    stream = await litellm.acompletion(messages=messages, tools=tools, stream=True, **options(api))
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == "A messenger god."
    assert fake_openai.requests[-1]["messages"][-1]["tool_call_id"] == "call_l"
