"""The tool registry: the one place the agent loop looks tools up and calls them.

The loop hands over whatever the model produced (a JSON string, possibly malformed) and always
gets a :class:`ToolResult` back. Bad JSON, missing arguments, wrong types, an unknown tool name
and any exception inside a tool all become ``ok=False`` results the model can read and correct;
nothing but cancellation propagates into the loop. Schemas are built once and reused for every
request, since they never change while the process runs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from hermes_gateway.agent.tools.base import Tool, ToolContext, ToolResult, error_result
from hermes_gateway.agent.tools.files import ReadFileTool, SearchFilesTool, WriteFileTool
from hermes_gateway.agent.tools.session_search import SessionSearchTool
from hermes_gateway.agent.tools.terminal import TerminalTool

log = logging.getLogger(__name__)

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


class ArgumentError(ValueError):
    """Arguments do not fit the tool's schema; the message is shown to the model."""


def _coerce(key: str, value: Any, expected: str) -> Any:
    """Check one argument against its JSON-schema type, fixing harmless model slips.

    Models sometimes send ``"20"`` for an integer or ``20.0`` for a count; those are coerced.
    Anything else of the wrong type is an :class:`ArgumentError`.
    """
    if value is None:
        return None
    if expected in ("integer", "number") and not isinstance(value, bool):
        if isinstance(value, str):
            try:
                value = float(value.strip()) if expected == "number" else int(value.strip())
            except ValueError:
                raise ArgumentError(f"argument {key!r} must be {expected}, got {value!r}") from None
        if expected == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
    allowed = _JSON_TYPES.get(expected)
    if allowed is None:
        return value
    if isinstance(value, bool) and expected != "boolean":
        raise ArgumentError(f"argument {key!r} must be {expected}, got a boolean")
    if not isinstance(value, allowed):
        raise ArgumentError(f"argument {key!r} must be {expected}, got {type(value).__name__}")
    return value


def validate_arguments(tool: Tool, raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Parse and minimally validate arguments (required keys, top-level types).

    Raises:
        ArgumentError: With a message meant for the model.
    """
    if raw is None:
        args: Any = {}
    elif isinstance(raw, str):
        if not raw.strip():
            args = {}
        else:
            try:
                args = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ArgumentError(
                    f"arguments are not valid JSON ({exc.msg} at char {exc.pos})"
                ) from None
    else:
        args = raw
    if not isinstance(args, dict):
        raise ArgumentError(f"arguments must be a JSON object, got {type(args).__name__}")
    schema = tool.parameters
    properties: dict[str, Any] = schema.get("properties", {})
    missing = [key for key in schema.get("required", []) if args.get(key) is None]
    if missing:
        raise ArgumentError(f"missing required argument(s): {', '.join(missing)}")
    checked = dict(args)
    for key, spec in properties.items():
        if key in checked and isinstance(spec, dict) and isinstance(spec.get("type"), str):
            checked[key] = _coerce(key, checked[key], spec["type"])
    return checked


class ToolRegistry:
    """Named tools with cached OpenAI schemas and a call that never raises."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._schemas: list[dict[str, Any]] | None = None

    def register(self, tool: Tool) -> None:
        """Add ``tool``; a second tool with the same name is a programming error."""
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = None

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        """Tool names in registration order."""
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """The ``tools=`` list for the chat completions API, built once and then reused."""
        if self._schemas is None:
            self._schemas = [tool.schema() for tool in self._tools.values()]
        return self._schemas

    def preview(self, name: str, raw_arguments: str | dict[str, Any] | None) -> str:
        """UI preview of a call, tolerant of arguments that do not parse."""
        tool = self._tools.get(name)
        if tool is None:
            return ""
        try:
            return tool.preview(validate_arguments(tool, raw_arguments))
        except Exception:
            return ""

    async def call(
        self, name: str, raw_arguments: str | dict[str, Any] | None, ctx: ToolContext
    ) -> ToolResult:
        """Run tool ``name``; every failure becomes ``ToolResult(ok=False, "error: ...")``.

        Only ``asyncio.CancelledError`` (and other ``BaseException``) escapes, so the agent
        loop can still be cancelled while a tool runs.
        """
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools) or "(none)"
            return error_result(
                f"unknown tool {name!r}; available tools: {known}", summary="unknown tool"
            )
        try:
            args = validate_arguments(tool, raw_arguments)
        except ArgumentError as exc:
            return error_result(f"{name}: {exc}", summary="bad arguments")
        try:
            result = await tool.run(args, ctx)
        except Exception as exc:
            log.exception("tool %s failed", name)
            return error_result(
                f"{name} failed: {type(exc).__name__}: {exc}", summary="tool failed"
            )
        if not isinstance(result, ToolResult):
            return error_result(f"{name} returned {type(result).__name__}, not a ToolResult")
        return result


def default_registry(*, terminal_timeout: float = 180, output_cap: int = 50_000) -> ToolRegistry:
    """The standard five tools: terminal, read_file, write_file, search_files, session_search."""
    registry = ToolRegistry()
    registry.register(TerminalTool(timeout=terminal_timeout, output_cap=output_cap))
    registry.register(ReadFileTool(output_cap=output_cap))
    registry.register(WriteFileTool())
    registry.register(SearchFilesTool(output_cap=output_cap))
    registry.register(SessionSearchTool(output_cap=output_cap))
    return registry
