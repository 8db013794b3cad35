"""The Responses API's shapes: ``input`` items in, response objects and stream events out.

Pure functions and small builders with no I/O, kept apart from the endpoint
(:mod:`.api_responses`) so the shapes can be read against OpenAI's API reference.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from hermes_gateway.platforms.api.openai_format import (
    bad_request,
    check_ends_turn,
    content_text,
    dumps,
    sse_event,
    user_message,
)
from hermes_gateway.store import StoredMessage

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import TurnResult


# --- input ----------------------------------------------------------------------------------


def parse_input(raw: Any) -> tuple[list[str], list[StoredMessage]]:
    """``input`` (a string or a list of items) as (system texts, chat messages)."""
    if isinstance(raw, str):
        return [], [StoredMessage(role="user", content=raw)]
    if not isinstance(raw, list) or not raw:
        raise bad_request(
            "Invalid 'input': expected a string or a non-empty array of input items.", "input"
        )
    system: list[str] = []
    messages: list[StoredMessage] = []
    for i, item in enumerate(raw):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for '{param}': expected an object.", param)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise bad_request(f"Invalid value for '{param}.role': {role!r}.", f"{param}.role")
            if role in ("system", "developer"):
                system.append(content_text(item.get("content"), f"{param}.content"))
            elif role == "user":
                messages.append(user_message(item.get("content"), f"{param}.content"))
            else:
                text = content_text(item.get("content"), f"{param}.content")
                messages.append(StoredMessage(role=role, content=text))
        elif kind == "function_call":
            call = {
                "id": _required_str(item, "call_id", param),
                "type": "function",
                "function": {
                    "name": _required_str(item, "name", param),
                    "arguments": item.get("arguments") or "{}",
                },
            }
            last = messages[-1] if messages else None
            if (
                last is not None
                and last.role == "assistant"
                and last.tool_calls
                and not last.content
            ):
                last.tool_calls.append(call)
            else:
                messages.append(StoredMessage(role="assistant", content=None, tool_calls=[call]))
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(
                StoredMessage(
                    role="tool",
                    content=output if isinstance(output, str) else dumps(output),
                    tool_call_id=_required_str(item, "call_id", param),
                )
            )
        elif kind == "reasoning":
            continue  # a model's own reasoning summary, echoed back by some clients
        else:
            raise bad_request(
                f"Unsupported input item '{param}' of type {kind!r}.", f"{param}.type"
            )
    check_ends_turn(messages, "input")
    return system, messages


def input_items(raw: Any) -> list[dict[str, Any]]:
    """``input`` as the list of items ``GET /v1/responses/{id}/input_items`` lists, with ids."""
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    items: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        out = {"type": "message", **item}
        if out["type"] == "message":
            content = out.get("content")
            if isinstance(content, str):
                kind = "output_text" if out.get("role") == "assistant" else "input_text"
                out["content"] = [{"type": kind, "text": content}]
            out.setdefault("status", "completed")
        out.setdefault("id", f"item_{i}")
        items.append(out)
    return items


def _required_str(item: dict[str, Any], name: str, param: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request(
            f"Missing required parameter: '{param}.{name}'.",
            f"{param}.{name}",
            "missing_required_parameter",
        )
    return value


# --- output ---------------------------------------------------------------------------------


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def function_call_item(call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    """A client-run tool call (chat-completions shape) as a Responses ``function_call`` item.

    Only calls of the client's own tools become items: the agent's tools ran inside the turn
    and are none of the client's business (a client would try to run them).
    """
    fn = call.get("function") or {}
    return {
        "id": "fc_" + str(call.get("id", "")),
        "type": "function_call",
        "status": status,
        "call_id": call.get("id", ""),
        "name": fn.get("name", ""),
        "arguments": fn.get("arguments", "") if status == "completed" else "",
    }


class EventWriter:
    """Numbers the events of one Responses stream (``sequence_number``)."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse_event(kind, payload)


class ResponseShell:
    """The fields of one response object that do not depend on the answer.

    ``echo`` holds what the request set (tools, tool_choice, text, temperature, ...), which
    the response object repeats as OpenAI's does.
    """

    def __init__(
        self,
        rid: str,
        model: str,
        instructions: str | None,
        previous: str | None,
        store: bool,
        echo: dict[str, Any] | None = None,
    ) -> None:
        self.id, self.model, self.instructions = rid, model, instructions
        self.previous, self.store = previous, store
        self.echo = {k: v for k, v in (echo or {}).items() if v is not None}
        self.created_at = int(time.time())

    def snapshot(self, status: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": self.instructions,
            "max_output_tokens": None,
            "metadata": {},
            "model": self.model,
            "output": [],
            "parallel_tool_calls": False,
            "previous_response_id": self.previous,
            "store": self.store,
            "temperature": None,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "truncation": "disabled",
            "usage": None,
            "user": None,
            **self.echo,
        }

    def finished(self, message_id: str, text: str, result: TurnResult) -> dict[str, Any]:
        """The whole response: the answer's message (unless the turn ended on client tool
        calls without text), then those calls as ``function_call`` items."""
        if result.error:
            status = "failed"
        elif result.interrupted:
            status = "incomplete"
        else:
            status = "completed"
        body = self.snapshot(status)
        if result.error:
            body["error"] = {"code": "server_error", "message": result.error}
        if result.interrupted:
            body["incomplete_details"] = {"reason": "interrupted"}
        elif result.finish_reason in ("length", "content_filter") and not result.error:
            body["status"] = "incomplete"
            reason = "max_output_tokens" if result.finish_reason == "length" else "content_filter"
            body["incomplete_details"] = {"reason": reason}
        calls = [function_call_item(c) for c in result.client_calls]
        body["output"] = [message_item(message_id, text)] if text or not calls else []
        body["output"].extend(calls)
        body["usage"] = {
            "input_tokens": result.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": result.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        }
        return body
