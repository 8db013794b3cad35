"""langchain-openai's ``ChatOpenAI`` against the API server: invoke, stream, ``bind_tools``
and ``with_structured_output``, over Chat Completions and the Responses API.

Why: LangChain surfaced the agent's own tool runs as tool_calls for the application to
execute, and its tools and structured output were dropped on the way to the model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("langchain_openai")

from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.integration.api_harness import KEY, ApiHarness, only_loopback, start_api


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    only_loopback(monkeypatch)


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


def chat(api: ApiHarness, *, responses: bool = False) -> ChatOpenAI:
    return ChatOpenAI(
        model="hermes-agent",
        base_url=api.base_url,
        api_key=KEY,  # type: ignore[arg-type]
        max_retries=0,
        timeout=10,
        temperature=0.3,
        use_responses_api=responses,
    )


def agent_tool_turn(fake: FakeOpenAI, answer: str) -> None:
    fake.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo lc-tool"})]),
        ScriptedReply(text=answer, chunk_size=4),
    )


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
async def test_invoke_and_stream_over_an_agent_tool_turn(
    api: ApiHarness, fake_openai: FakeOpenAI, responses: bool
) -> None:
    llm = chat(api, responses=responses)
    agent_tool_turn(fake_openai, "It printed lc-tool.")
    reply = await llm.ainvoke("run echo")
    assert reply.text == "It printed lc-tool."
    assert reply.tool_calls == []  # the agent's tool run is not LangChain's to execute
    assert fake_openai.requests[-2]["temperature"] == 0.3

    agent_tool_turn(fake_openai, "Streamed after the tool.")
    pieces = [chunk async for chunk in llm.astream("run it again")]
    assert all(isinstance(p, AIMessageChunk) for p in pieces)
    assert "".join(p.text for p in pieces) == "Streamed after the tool."
    assert not any(p.tool_call_chunks for p in pieces)
    tool = fake_openai.requests[-1]["messages"][-1]
    assert tool["role"] == "tool" and "lc-tool" in tool["content"]


def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
async def test_bind_tools_round_trip(
    api: ApiHarness, fake_openai: FakeOpenAI, responses: bool
) -> None:
    llm = chat(api, responses=responses).bind_tools([get_weather])
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("get_weather", {"city": "Bern"}, id="call_lc")]),
        ScriptedReply(text="Bern is sunny."),
    )
    question = HumanMessage("weather in Bern?")
    asked = await llm.ainvoke([question])
    assert [(c["name"], c["args"], c["id"]) for c in asked.tool_calls] == [
        ("get_weather", {"city": "Bern"}, "call_lc")
    ]
    assert "get_weather" in [t["function"]["name"] for t in fake_openai.requests[-1]["tools"]]
    result = ToolMessage(get_weather("Bern"), tool_call_id="call_lc")
    final = await llm.ainvoke([question, asked, result])
    assert final.text == "Bern is sunny."
    tool = fake_openai.requests[-1]["messages"][-1]
    assert tool == {"role": "tool", "content": "sunny in Bern", "tool_call_id": "call_lc"}


class City(BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
async def test_with_structured_output(
    api: ApiHarness, fake_openai: FakeOpenAI, responses: bool
) -> None:
    fake_openai.enqueue(ScriptedReply(text=json.dumps({"name": "Bern", "population": 134000})))
    structured = chat(api, responses=responses).with_structured_output(City)
    city = await structured.ainvoke("Bern facts")
    assert city == City(name="Bern", population=134000)
    fmt = fake_openai.requests[-1]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
