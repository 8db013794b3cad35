"""What a request asks of the model besides its messages: tools, tool_choice, sampling, format.

Clients that send ``tools`` expect tool calls back, and clients that send ``response_format``
expect JSON; dropping either silently gives them plain text they cannot use. So every field
of a request is either passed on to the model (checked enough that the model server will not
refuse it for its shape), used by the server, or refused with a 400 that names it: one
answer listing every such field at once. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hermes_gateway.agent.loop import TurnOptions
from hermes_gateway.platforms.api.errors import ApiError

__all__ = ["PROGRESS_HEADER", "Problems", "chat_options", "responses_options", "wants_progress"]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _stop(v: Any) -> bool:
    return isinstance(v, str) or (
        isinstance(v, list) and len(v) <= 4 and all(isinstance(s, str) for s in v)
    )


# Passed to the model as they are: name -> (check, what it must be).
_SAMPLING: dict[str, tuple[Callable[[Any], bool], str]] = {
    "temperature": (_number, "a number"),
    "top_p": (_number, "a number"),
    "seed": (_int, "an integer"),
    "presence_penalty": (_number, "a number"),
    "frequency_penalty": (_number, "a number"),
    "logit_bias": (lambda v: isinstance(v, dict), "an object"),
    "parallel_tool_calls": (lambda v: isinstance(v, bool), "a boolean"),
    "reasoning_effort": (lambda v: isinstance(v, str), "a string"),
}
_CHAT_ONLY: dict[str, tuple[Callable[[Any], bool], str]] = {
    "stop": (_stop, "a string or an array of at most 4 strings"),
    "max_tokens": (lambda v: _int(v) and v > 0, "a positive integer"),
    "max_completion_tokens": (lambda v: _int(v) and v > 0, "a positive integer"),
}

# Read by the server itself (or harmless bookkeeping with no effect on the answer).
_CHAT_SERVER = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "tools",
    "tool_choice",
    "response_format",
    "n",
    "logprobs",
    "top_logprobs",
    "hermes_tool_progress",
}
_RESPONSES_SERVER = {
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "conversation",
    "store",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "service_tier",
    "tools",
    "tool_choice",
    "text",
    "max_output_tokens",
    "truncation",
    "include",
    "reasoning",
    "prompt_cache_key",
    "safety_identifier",
    "background",
    "top_logprobs",
    "hermes_tool_progress",
}


class Problems:
    """Every problem found in one request, raised together as one 400."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, param: str, message: str) -> None:
        self.items.append((param, message))

    def raise_any(self) -> None:
        if not self.items:
            return
        message = " ".join(m for _, m in self.items)
        code = "unsupported_parameter" if len(self.items) == 1 else "invalid_request"
        raise ApiError(400, message, param=self.items[0][0], code=code)


def _sampling(
    body: dict[str, Any], table: dict[str, tuple[Callable[[Any], bool], str]], p: Problems
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, (check, wanted) in table.items():
        value = body.get(name)
        if value is None:
            continue
        if check(value):
            params[name] = value
        else:
            p.add(name, f"Invalid value for '{name}': expected {wanted}.")
    return params


def _unknown(body: dict[str, Any], known: set[str], p: Problems) -> None:
    for name in body:
        if name not in known:
            p.add(
                name,
                f"Unsupported parameter: '{name}' is not supported by this server "
                "(remove it from the request).",
            )


def _check_function(fn: Any, where: str, p: Problems) -> dict[str, Any] | None:
    """A function definition ``{name, description?, parameters?, strict?}`` or None."""
    if not isinstance(fn, dict):
        p.add(where, f"Invalid type for '{where}': expected an object.")
        return None
    name = fn.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        p.add(
            f"{where}.name",
            f"Invalid '{where}.name': 1-64 letters, digits, underscores and dashes.",
        )
        return None
    out: dict[str, Any] = {"name": name}
    description = fn.get("description")
    if description is not None:
        if not isinstance(description, str):
            p.add(f"{where}.description", f"Invalid type for '{where}.description'.")
        out["description"] = description
    parameters = fn.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            p.add(f"{where}.parameters", f"Invalid type for '{where}.parameters': an object.")
        out["parameters"] = parameters
    if fn.get("strict") is not None:
        out["strict"] = fn["strict"]
    return {"type": "function", "function": out}


def _tool_choice(choice: Any, names: set[str], where: str, p: Problems) -> Any:
    """Chat-completions ``tool_choice`` checked against the client's tools."""
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        if isinstance(name, str) and name in names:
            return {"type": "function", "function": {"name": name}}
        p.add(where, f"Invalid '{where}': {name!r} is not one of the tools sent in 'tools'.")
        return None
    p.add(
        where,
        f"Invalid value for '{where}': expected 'auto', 'none', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
    )
    return None


def _response_format(value: Any, where: str, p: Problems) -> dict[str, Any] | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        assert isinstance(value, dict)
        schema = value.get("json_schema")
        if (
            not isinstance(schema, dict)
            or not isinstance(schema.get("name"), str)
            or not isinstance(schema.get("schema", {}), dict)
        ):
            p.add(
                where,
                f"Invalid '{where}.json_schema': expected an object with a 'name' and a 'schema'.",
            )
            return None
        return {"type": "json_schema", "json_schema": schema}
    p.add(where, f"Invalid '{where}.type': expected 'text', 'json_object' or 'json_schema'.")
    return None


def _choices(body: dict[str, Any], p: Problems) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        p.add(
            "n",
            "Unsupported value for 'n': the agent gives one answer per request (n must be 1).",
        )
    if body.get("logprobs") or body.get("top_logprobs"):
        name = "logprobs" if body.get("logprobs") else "top_logprobs"
        p.add(
            name,
            f"Unsupported parameter: '{name}': the agent's answers carry no log probabilities.",
        )


def chat_options(body: dict[str, Any], p: Problems) -> TurnOptions:
    """``tools``, ``tool_choice``, ``response_format`` and sampling of a chat completions body."""
    _unknown(body, _CHAT_SERVER | set(_SAMPLING) | set(_CHAT_ONLY), p)
    _choices(body, p)
    params = _sampling(body, {**_SAMPLING, **_CHAT_ONLY}, p)
    tools: list[dict[str, Any]] = []
    raw = body.get("tools")
    if raw is not None and not isinstance(raw, list):
        p.add("tools", "Invalid type for 'tools': expected an array.")
    for i, tool in enumerate(raw if isinstance(raw, list) else []):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            p.add(f"{where}.type", f"Unsupported tool type {kind!r} in '{where}': only functions.")
            continue
        checked = _check_function(tool.get("function"), f"{where}.function", p)
        if checked is not None:
            tools.append(checked)
    names = {t["function"]["name"] for t in tools}
    choice = _tool_choice(body.get("tool_choice"), names, "tool_choice", p)
    fmt = _response_format(body.get("response_format"), "response_format", p)
    if fmt is not None:
        params["response_format"] = fmt
    return TurnOptions(client_tools=tools, tool_choice=choice, params=params)


def responses_options(body: dict[str, Any], p: Problems) -> TurnOptions:
    """The same for a Responses body: its flat tools, ``text.format``, ``max_output_tokens``."""
    _unknown(body, _RESPONSES_SERVER | set(_SAMPLING), p)
    _choices(body, p)
    if body.get("background"):
        p.add("background", "Unsupported value for 'background': responses run in the request.")
    params = _sampling(body, _SAMPLING, p)
    limit = body.get("max_output_tokens")
    if limit is not None:
        if _int(limit) and limit > 0:
            params["max_tokens"] = limit
        else:
            p.add("max_output_tokens", "Invalid 'max_output_tokens': expected a positive integer.")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        params["reasoning_effort"] = reasoning["effort"]
    tools: list[dict[str, Any]] = []
    raw = body.get("tools")
    if raw is not None and not isinstance(raw, list):
        p.add("tools", "Invalid type for 'tools': expected an array.")
    for i, tool in enumerate(raw if isinstance(raw, list) else []):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            p.add(
                f"{where}.type",
                f"Unsupported tool type {kind!r} in '{where}': only function tools are "
                "supported (the agent brings its own tools).",
            )
            continue
        assert isinstance(tool, dict)
        checked = _check_function(tool, where, p)
        if checked is not None:
            tools.append(checked)
    names = {t["function"]["name"] for t in tools}
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    choice = _tool_choice(choice, names, "tool_choice", p)
    text = body.get("text")
    if text is not None:
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
            fmt = {"type": "json_schema", "json_schema": schema}
        converted = _response_format(fmt, "text.format", p) if fmt is not None else None
        if converted is not None:
            params["response_format"] = converted
    return TurnOptions(client_tools=tools, tool_choice=choice, params=params)


PROGRESS_HEADER = "X-Hermes-Tool-Progress"
"""Request header (``true``) asking for the agent's tool progress in the stream."""


def wants_progress(body: dict[str, Any], header: str | None) -> bool:
    """Whether the client asked for tool progress in its stream (field or header)."""
    if body.get("hermes_tool_progress") is True:
        return True
    return (header or "").strip().lower() in ("1", "true", "yes", "on")
