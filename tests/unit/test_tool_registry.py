"""ToolRegistry: argument handling, error containment, schemas; session_search formatting."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hermes_gateway.agent.tools import (
    Tool,
    ToolContext,
    ToolRegistry,
    ToolResult,
    default_registry,
)

EXPECTED_TOOLS = ["terminal", "read_file", "write_file", "search_files", "session_search"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory of our own: the shared conftest puts HERMES_HOME inside tmp_path."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def ctx(work: Path) -> ToolContext:
    return ToolContext(
        session_id="s1", session_key="local:dm:me", cwd=work, interrupt=asyncio.Event()
    )


class ExplodingTool(Tool):
    name: ClassVar[str] = "explode"
    description: ClassVar[str] = "Always raises."
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise RuntimeError("boom")


class HangingTool(Tool):
    name: ClassVar[str] = "hang"
    description: ClassVar[str] = "Never finishes."
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_schemas_shape_and_cache() -> None:
    registry = default_registry()
    assert registry.names == EXPECTED_TOOLS
    schemas = registry.schemas()
    assert [s["function"]["name"] for s in schemas] == EXPECTED_TOOLS
    for schema in schemas:
        assert schema["type"] == "function"
        fn = schema["function"]
        assert fn["description"]
        params = fn["parameters"]
        assert params["type"] == "object"
        assert set(params["required"]) <= set(params["properties"])
        for prop in params["properties"].values():
            assert prop["type"] in {"string", "integer", "number", "boolean", "array", "object"}
    json.dumps(schemas)  # goes over the wire as is
    assert registry.schemas() is schemas  # built once


def test_register_rejects_duplicates_and_invalidates_cache() -> None:
    registry = default_registry()
    first = registry.schemas()
    with pytest.raises(ValueError):
        registry.register(default_registry().get("terminal"))  # type: ignore[arg-type]
    registry.register(ExplodingTool())
    assert registry.schemas() is not first
    assert registry.schemas()[-1]["function"]["name"] == "explode"


async def test_bad_json_arguments(ctx: ToolContext) -> None:
    result = await default_registry().call("terminal", '{"command": "echo hi"', ctx)
    assert not result.ok
    assert result.content.startswith("error:") and "not valid JSON" in result.content


async def test_arguments_must_be_an_object(ctx: ToolContext) -> None:
    result = await default_registry().call("terminal", '["echo hi"]', ctx)
    assert not result.ok and "JSON object" in result.content


async def test_missing_required_argument(ctx: ToolContext) -> None:
    registry = default_registry()
    for raw in ("", "{}", None, {"workdir": "."}):
        result = await registry.call("terminal", raw, ctx)
        assert not result.ok and "missing required argument(s): command" in result.content


async def test_wrong_argument_type(ctx: ToolContext) -> None:
    result = await default_registry().call("terminal", {"command": 5}, ctx)
    assert not result.ok and "'command' must be string" in result.content
    flag = await default_registry().call("read_file", {"path": "x", "limit": True}, ctx)
    assert not flag.ok and "'limit' must be integer" in flag.content


async def test_numeric_strings_are_coerced(ctx: ToolContext, work: Path) -> None:
    (work / "a.txt").write_text("one\ntwo\nthree\n")
    result = await default_registry().call(
        "read_file", json.dumps({"path": "a.txt", "offset": "2", "limit": 1.0}), ctx
    )
    assert result.ok
    assert result.content.splitlines()[0] == "     2\ttwo"


async def test_unknown_tool_lists_the_known_ones(ctx: ToolContext) -> None:
    result = await default_registry().call("browser", "{}", ctx)
    assert not result.ok
    assert "unknown tool 'browser'" in result.content
    for name in EXPECTED_TOOLS:
        assert name in result.content


async def test_exception_inside_a_tool_becomes_a_result(ctx: ToolContext) -> None:
    registry = ToolRegistry()
    registry.register(ExplodingTool())
    result = await registry.call("explode", "{}", ctx)
    assert not result.ok
    assert "RuntimeError: boom" in result.content


async def test_cancellation_still_propagates(ctx: ToolContext) -> None:
    registry = ToolRegistry()
    tool = HangingTool()
    registry.register(tool)
    task = asyncio.ensure_future(registry.call("hang", "{}", ctx))
    await tool.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_tools_work_together_through_the_registry(ctx: ToolContext, work: Path) -> None:
    registry = default_registry(terminal_timeout=10)
    wrote = await registry.call(
        "write_file", json.dumps({"path": "src/app.py", "content": "print('hi')\n"}), ctx
    )
    assert wrote.ok
    found = await registry.call("search_files", json.dumps({"pattern": "print"}), ctx)
    assert found.content == "src/app.py:1: print('hi')"
    ran = await registry.call("terminal", json.dumps({"command": "python3 src/app.py"}), ctx)
    assert ran.ok and ran.content.startswith("hi")
    assert registry.preview("terminal", '{"command": "python3 src/app.py"}') == "python3 src/app.py"
    assert registry.preview("terminal", "{not json") == ""


def test_default_registry_options_reach_the_tools() -> None:
    registry = default_registry(terminal_timeout=7, output_cap=1234)
    terminal = registry.get("terminal")
    assert terminal is not None
    assert terminal.timeout == 7 and terminal.output_cap == 1234  # type: ignore[attr-defined]


# --- session_search -----------------------------------------------------------------------


@dataclass
class Hit:
    session_id: str
    session_title: str | None
    role: str
    snippet: str
    created_at: Any


async def test_session_search_unavailable(ctx: ToolContext) -> None:
    result = await default_registry().call("session_search", {"query": "deploy"}, ctx)
    assert not result.ok and "session search is not available" in result.content


async def test_session_search_formats_hits(ctx: ToolContext) -> None:
    calls: list[tuple[str, int]] = []

    async def backend(query: str, limit: int) -> list[Any]:
        calls.append((query, limit))
        return [
            Hit(
                "abc123",
                "Deploy notes",
                "user",
                "how do we   deploy\nthe app?",
                datetime(2025, 3, 4, 5, 6),
            ),
            Hit("def456", None, "assistant", "run make deploy", "2025-03-05T10:00:00+00:00"),
        ]

    ctx.search = backend
    result = await default_registry().call("session_search", '{"query": "deploy", "limit": 5}', ctx)
    assert calls == [("deploy", 5)]
    assert result.ok and result.summary == "2 hits"
    assert result.content.splitlines() == [
        "[2025-03-04 05:06] Deploy notes (abc123) user: how do we deploy the app?",
        "[2025-03-05T10:00] (untitled) (def456) assistant: run make deploy",
    ]


async def test_session_search_no_hits_and_limit_clamped(ctx: ToolContext) -> None:
    calls: list[int] = []

    async def backend(query: str, limit: int) -> list[Any]:
        calls.append(limit)
        return []

    ctx.search = backend
    result = await default_registry().call("session_search", {"query": "x", "limit": 10_000}, ctx)
    assert result.ok and "no past messages" in result.content
    assert calls == [50]
