"""The OpenAI Agents SDK (``openai-agents``) against the API server, with a Chat Completions and
a Responses model, with and without its own function tools, run and streamed.

Why: before issue 15 the agent's own tool runs came back as ``function_call`` items and the
SDK stopped with "Tool ... not found in agent"; its own tools were never offered to the model.
Tracing is off (it would post to the internet); every client points at 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

agents = pytest.importorskip("agents")

from agents import (  # noqa: E402
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec  # noqa: E402
from tests.integration.api_harness import ApiHarness, only_loopback, start_api  # noqa: E402

MODELS = ["chat", "responses"]


@pytest.fixture(autouse=True)
def no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    set_tracing_disabled(True)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    only_loopback(monkeypatch)


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


def model_for(api: ApiHarness, kind: str) -> Model:
    client = api.client()
    if kind == "chat":
        return OpenAIChatCompletionsModel(model="hermes-agent", openai_client=client)
    return OpenAIResponsesModel(model="hermes-agent", openai_client=client)


calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    calls.append(city)
    return f"sunny in {city}"


def agent_tools_turn(fake: FakeOpenAI) -> None:
    """The model runs the gateway's own terminal tool, then answers."""
    fake.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo from-the-agent"})]),
        ScriptedReply(text="The agent's command printed from-the-agent."),
    )


def client_tool_turn(fake: FakeOpenAI) -> None:
    """The model calls the SDK's own tool; after its result, it answers."""
    fake.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}, id="call_p")]),
        ScriptedReply(text="Paris is sunny."),
    )


def last_tool_result(fake: FakeOpenAI) -> dict[str, Any]:
    return fake.requests[-1]["messages"][-1]


@pytest.mark.parametrize("kind", MODELS)
async def test_runner_without_own_tools_over_an_agent_tool_turn(
    api: ApiHarness, fake_openai: FakeOpenAI, kind: str
) -> None:
    agent_tools_turn(fake_openai)
    agent = Agent(name="helper", instructions="Be brief.", model=model_for(api, kind))
    result = await Runner.run(agent, "run the echo")
    assert result.final_output == "The agent's command printed from-the-agent."
    tool = last_tool_result(fake_openai)
    assert tool["role"] == "tool" and "from-the-agent" in tool["content"]
    # The SDK's instructions reached the model beside the agent's system prompt.
    assert fake_openai.requests[0]["messages"][0]["content"].endswith("Be brief.")


@pytest.mark.parametrize("kind", MODELS)
async def test_runner_with_its_own_function_tool(
    api: ApiHarness, fake_openai: FakeOpenAI, kind: str
) -> None:
    calls.clear()
    client_tool_turn(fake_openai)
    agent = Agent(name="helper", model=model_for(api, kind), tools=[get_weather])
    result = await Runner.run(agent, "weather in Paris?")
    assert result.final_output == "Paris is sunny."
    assert calls == ["Paris"]  # the SDK ran its tool itself
    first = fake_openai.requests[0]
    names = [t["function"]["name"] for t in first["tools"]]
    assert "get_weather" in names and "terminal" in names
    tool = last_tool_result(fake_openai)
    assert tool == {"role": "tool", "content": "sunny in Paris", "tool_call_id": "call_p"}


@pytest.mark.parametrize("kind", MODELS)
async def test_runner_streamed_with_both_kinds_of_tools(
    api: ApiHarness, fake_openai: FakeOpenAI, kind: str
) -> None:
    calls.clear()
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo step-one"})]),
        ScriptedReply(
            text="Now the weather.",
            tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"}, id="call_r")],
        ),
        ScriptedReply(text="Rome is sunny.", chunk_size=3),
    )
    agent = Agent(name="helper", model=model_for(api, kind), tools=[get_weather])
    run = Runner.run_streamed(agent, "step one, then Rome weather")
    deltas: list[str] = []
    async for event in run.stream_events():
        if event.type == "raw_response_event":
            data = event.data
            delta = getattr(data, "delta", None)
            if getattr(data, "type", "") == "response.output_text.delta" and delta:
                deltas.append(delta)
    assert run.final_output == "Rome is sunny."
    assert calls == ["Rome"]
    assert "".join(deltas).endswith("Rome is sunny.")
    outputs = [
        json.dumps(m.get("content"))
        for r in fake_openai.requests
        for m in r["messages"]
        if m["role"] == "tool"
    ]
    assert any("step-one" in o for o in outputs) and any("sunny in Rome" in o for o in outputs)
