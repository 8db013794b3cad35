"""The agent loop with the real openai SDK against the scripted server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway.agent.loop import Agent
from hermes_gateway.agent.provider import ProviderPool
from hermes_gateway.agent.tools.base import ToolContext
from hermes_gateway.agent.tools.registry import default_registry
from hermes_gateway.config import Config
from tests.fakes.openai_server import ScriptedReply, ToolCallSpec


class RecordingSink:
    def __init__(self) -> None:
        self.deltas: list[str] = []
        self.tools: list[tuple] = []
        self.notices: list[tuple[str, str]] = []
        self.first_delta = asyncio.Event()
        self.tool_running = asyncio.Event()
        self.arguments: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.steps: list[tuple[int, list[str]]] = []

    def on_delta(self, text: str) -> None:
        self.deltas.append(text)
        self.first_delta.set()

    def on_tool_started(self, call_id: str, name: str, preview: str, arguments: str = "") -> None:
        self.tools.append(("started", call_id, name, preview))
        self.arguments[call_id] = arguments
        self.tool_running.set()

    def on_tool_finished(self, call_id, name, ok, duration, summary, output: str = "") -> None:
        self.tools.append(("finished", call_id, name, ok, duration, summary))
        self.outputs[call_id] = output

    def on_step(self, iteration: int, tools: list[dict[str, Any]]) -> None:
        self.steps.append((iteration, [t["name"] for t in tools]))

    def on_notice(self, text: str, level: str) -> None:
        self.notices.append((text, level))


@pytest.fixture
async def agent() -> Agent:
    pool = ProviderPool()
    yield Agent(pool, default_registry(), max_iterations=4, max_retries=2, retry_base_delay=0.01)
    await pool.aclose()


def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(
        session_id="s1", session_key="local:dm:operator", cwd=tmp_path, interrupt=asyncio.Event()
    )


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def test_streams_text_and_counts_usage(agent, config: Config, fake_openai, tmp_path):
    text = "Hello **world**, this answer arrives in many small pieces."
    fake_openai.enqueue(
        ScriptedReply(text=text, chunk_size=3, prompt_tokens=11, completion_tokens=7)
    )
    sink = RecordingSink()
    result = await agent.run_turn(
        model=config.model, messages=user("hi"), sink=sink, ctx=ctx(tmp_path)
    )
    assert result.error is None and not result.interrupted
    assert "".join(sink.deltas) == text == result.text
    assert len(sink.deltas) > 5
    assert (result.prompt_tokens, result.completion_tokens) == (11, 7)
    assert [m.role for m in result.messages] == ["assistant"]
    assert fake_openai.requests[0]["stream"] is True
    assert fake_openai.requests[0]["tools"], "tool schemas are sent"


async def test_tool_loop_runs_terminal_and_continues(agent, config, fake_openai, tmp_path):
    fake_openai.enqueue(
        ScriptedReply(
            text="Let me look.",
            tool_calls=[ToolCallSpec("terminal", {"command": "echo tool-output-42"})],
        ),
        ScriptedReply(text="The command printed 42."),
    )
    sink = RecordingSink()
    result = await agent.run_turn(
        model=config.model, messages=user("run it"), sink=sink, ctx=ctx(tmp_path)
    )
    assert result.text == "Let me look.\n\nThe command printed 42."
    assert [m.role for m in result.messages] == ["assistant", "tool", "assistant"]
    assert "tool-output-42" in result.messages[1].content
    started = [t for t in sink.tools if t[0] == "started"]
    finished = [t for t in sink.tools if t[0] == "finished"]
    assert started[0][2] == "terminal" and "echo tool-output-42" in started[0][3]
    assert finished[0][3] is True and finished[0][4] >= 0
    call_id = started[0][1]
    assert json.loads(sink.arguments[call_id]) == {"command": "echo tool-output-42"}
    assert "tool-output-42" in sink.outputs[call_id]  # the screen can show what it printed
    second = fake_openai.requests[1]["messages"]
    assert second[-1]["role"] == "tool" and "tool-output-42" in second[-1]["content"]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "terminal"
    # A step before each model call, with the tools the previous step ran (agent:step).
    assert sink.steps == [(1, []), (2, ["terminal"])]


async def test_interrupt_mid_stream_keeps_partial_answer(agent, config, fake_openai, tmp_path):
    fake_openai.enqueue(ScriptedReply(text="word " * 200, chunk_size=5, delay=0.02))
    sink = RecordingSink()
    c = ctx(tmp_path)
    turn = asyncio.create_task(
        agent.run_turn(model=config.model, messages=user("go"), sink=sink, ctx=c)
    )
    await asyncio.wait_for(sink.first_delta.wait(), 5)
    c.interrupt.set()
    started = time.monotonic()
    result = await asyncio.wait_for(turn, 5)
    assert time.monotonic() - started < 1.0
    assert result.interrupted
    assert result.text and len(result.text) < len("word " * 200)
    assert result.messages[-1].interrupted
    assert result.messages[-1].content.strip() == result.text


async def test_interrupt_mid_tool_kills_the_command(agent, config, fake_openai, tmp_path):
    fake_openai.enqueue(
        ScriptedReply(
            tool_calls=[
                ToolCallSpec("terminal", {"command": "sleep 30"}),
                ToolCallSpec("terminal", {"command": "echo never"}),
            ]
        )
    )
    sink = RecordingSink()
    c = ctx(tmp_path)
    turn = asyncio.create_task(
        agent.run_turn(model=config.model, messages=user("go"), sink=sink, ctx=c)
    )
    await asyncio.wait_for(sink.tool_running.wait(), 5)
    await asyncio.sleep(0.1)
    c.interrupt.set()
    started = time.monotonic()
    result = await asyncio.wait_for(turn, 5)
    assert time.monotonic() - started < 2.5
    assert result.interrupted
    tool_msgs = [m for m in result.messages if m.role == "tool"]
    assert len(tool_msgs) == 2, "every tool call gets an answer so the history stays valid"
    assert "interrupted" in tool_msgs[0].content
    assert len(fake_openai.requests) == 1


async def test_retries_server_errors_then_answers(agent, config, fake_openai, tmp_path):
    fake_openai.enqueue(
        ScriptedReply(status=500, error_message="boom"),
        ScriptedReply(status=429, error_message="slow down", retry_after=0.05),
        ScriptedReply(text="finally"),
    )
    sink = RecordingSink()
    result = await agent.run_turn(
        model=config.model, messages=user("x"), sink=sink, ctx=ctx(tmp_path)
    )
    assert result.text == "finally" and result.error is None
    assert len(fake_openai.requests) == 3
    assert len(sink.notices) == 2 and "Retrying" in sink.notices[0][0]
    assert "429" in sink.notices[1][0]


async def test_gives_up_after_bounded_retries(agent, config, fake_openai, tmp_path):
    fake_openai.enqueue(*[ScriptedReply(status=503, error_message="down")] * 5)
    result = await agent.run_turn(
        model=config.model, messages=user("x"), sink=RecordingSink(), ctx=ctx(tmp_path)
    )
    assert result.error and "503" in result.error
    assert len(fake_openai.requests) == 3  # 1 + max_retries


async def test_bad_api_key_is_a_clear_message_without_retry(agent, config, fake_openai, tmp_path):
    config.model.api_key = "wrong-key"
    sink = RecordingSink()
    result = await agent.run_turn(
        model=config.model, messages=user("x"), sink=sink, ctx=ctx(tmp_path)
    )
    assert result.error and "API key" in result.error and "401" in result.error
    assert "Traceback" not in result.error
    assert sink.notices == [], "a rejected key is not retried"


async def test_stalled_stream_times_out_and_is_retried(agent, config, fake_openai, tmp_path):
    config.model.timeout = 0.3
    fake_openai.enqueue(
        ScriptedReply(text="never finished", stall_after=0), ScriptedReply(text="second try")
    )
    sink = RecordingSink()
    result = await agent.run_turn(
        model=config.model, messages=user("x"), sink=sink, ctx=ctx(tmp_path)
    )
    assert result.text == "second try"
    assert any("did not answer" in n[0] for n in sink.notices)


async def test_unreachable_server(agent, config, tmp_path):
    config.model.base_url = "http://127.0.0.1:9/v1"
    result = await agent.run_turn(
        model=config.model, messages=user("x"), sink=RecordingSink(), ctx=ctx(tmp_path)
    )
    assert result.error and "Could not reach" in result.error


async def test_iteration_limit(agent, config, fake_openai, tmp_path):
    fake_openai.enqueue(
        *[ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "true"})])] * 6
    )
    sink = RecordingSink()
    result = await agent.run_turn(
        model=config.model, messages=user("loop"), sink=sink, ctx=ctx(tmp_path)
    )
    assert result.error and "4 tool steps" in result.error
    assert len(fake_openai.requests) == 4


async def test_no_model_configured(agent, config, tmp_path):
    config.model.base_url = ""
    result = await agent.run_turn(
        model=config.model, messages=user("x"), sink=RecordingSink(), ctx=ctx(tmp_path)
    )
    assert result.error and "No model is configured" in result.error


async def test_tool_call_not_offered_is_refused(agent, config, fake_openai, tmp_path):
    """A turn with use_tools=False (a webhook route without ``tools: true``) offers no
    schema; a tool call the model emits anyway must not run."""
    marker = tmp_path / "ran"
    fake_openai.enqueue(
        ScriptedReply(
            tool_calls=[
                ToolCallSpec("terminal", {"command": f"touch {marker}"}),
                ToolCallSpec("write_file", {"path": str(tmp_path / "w.txt"), "content": "x"}),
            ]
        ),
        ScriptedReply(text="ok"),
    )
    sink = RecordingSink()
    result = await agent.run_turn(
        model=config.model, messages=user("go"), sink=sink, ctx=ctx(tmp_path), use_tools=False
    )
    assert "tools" not in fake_openai.requests[0]
    assert not marker.exists() and not (tmp_path / "w.txt").exists()
    tool_msgs = [m for m in result.messages if m.role == "tool"]
    assert [m.name for m in tool_msgs] == ["terminal", "write_file"]
    assert all("not available" in m.content for m in tool_msgs)
    assert not [t for t in sink.tools if t[0] == "started"], "nothing shown as running"
    assert [level for _, level in sink.notices] == ["warning", "warning"]
    assert result.text == "ok"
