"""OpenAI's wire format, both ways: parsing requests and building responses, chunks, errors.

Kept apart from the server so the exact shapes clients depend on (error envelopes, the role
chunk first, ``data: [DONE]`` last, the usage chunk) live in one small module that can be
read against OpenAI's API reference. Nothing here does I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hermes_gateway.agent.loop import TurnOptions, TurnResult
from hermes_gateway.platforms.api.errors import ApiError, bad_request, error_body
from hermes_gateway.platforms.api.options import Problems, chat_options
from hermes_gateway.random_ids import token_hex
from hermes_gateway.store import StoredMessage
from hermes_gateway.text import clean_surrogates

__all__ = ["ApiError", "bad_request", "error_body"]  # re-exported: the endpoints' one import

AGENT_MODEL = "hermes-agent"
"""The model id under which the whole agent (tools, sessions) is offered."""

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_TEXT_PARTS = {"text", "input_text", "output_text"}


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is (smaller than escaped, and what OpenAI sends)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def new_id(prefix: str) -> str:
    return f"{prefix}{token_hex(12)}"


MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a request body may have (OpenAI's own bodies need
about six levels). Deeper bodies are refused before anything walks them recursively."""

clean_text = clean_surrogates


def _too_deep() -> ApiError:
    return bad_request(
        f"The JSON body is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and "
        "objects are accepted.",
        code="json_too_deep",
    )


def _cleaned(value: Any, depth: int) -> Any:
    """``value`` with every string (keys too) cleaned; 400 beyond ``MAX_JSON_DEPTH``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        if depth >= MAX_JSON_DEPTH:
            raise _too_deep()
        return [_cleaned(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if depth >= MAX_JSON_DEPTH:
            raise _too_deep()
        return {clean_text(k): _cleaned(v, depth + 1) for k, v in value.items()}
    return value


def load_json(raw: bytes | str) -> Any:
    """A request body as JSON: nesting bounded, lone surrogates replaced, or a 400.

    Every endpoint parses through here, so nothing that enters from a request (and is later
    stored, kept in a session's memory or sent to the model) can carry a lone surrogate, and
    absurd nesting (``[`` x 100,000, which makes ``json.loads`` raise RecursionError) is a
    400 rather than a 500 with a traceback.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request(
            "We could not parse the JSON body of your request. The API expects a JSON "
            "payload, but what was sent was not valid JSON."
        ) from None
    return _cleaned(value, 0)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    body = load_json(raw)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and kind in (int, float):
        value = object()  # a boolean is not a number here, whatever Python thinks
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        wanted = {"str": "a string", "bool": "a boolean", "dict": "an object", "list": "an array"}
        raise bad_request(
            f"Invalid type for '{name}': expected {wanted.get(names, names)}.",
            param=name,
            code="invalid_type",
        )
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value: str | None = _field(body, name, str, None)
    return value


def optional_bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value: bool = _field(body, name, bool, default)
    return value


def content_text(content: Any, param: str) -> str:
    """A message's content as text: a string, or its text parts joined by newlines.

    For messages that can only carry text (system, assistant, tool): an image part there
    would be silently lost, so it is refused with a 400 naming the part.
    """
    text, images = content_parts(content, param)
    if images:
        raise bad_request(
            f"Unsupported content part '{images[0]['param']}': images are accepted in user "
            "messages only.",
            param=images[0]["param"],
            code="unsupported_content_type",
        )
    return text


def content_parts(content: Any, param: str) -> tuple[str, list[dict[str, Any]]]:
    """A message's text and its image parts (``{"url", "detail"?, "param"}``, in order).

    Accepts chat-completions parts (``text``, ``image_url``) and Responses parts
    (``input_text``, ``output_text``, ``input_image``); any other part (audio, files) is a
    400 naming it, never silently dropped. Images are only read here, not fetched: data URLs
    are saved and https URLs passed on (see :mod:`.images`).
    """
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise bad_request(
            f"Invalid type for '{param}': expected a string or an array of content parts.",
            param=param,
            code="invalid_type",
        )
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        if not isinstance(part, dict):
            raise bad_request(f"Invalid type for '{where}': expected an object.", param=where)
        kind = part.get("type")
        if kind == "refusal":
            continue
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
            continue
        url: Any = None
        detail: Any = None
        if kind == "image_url":
            inner = part.get("image_url")
            url = inner.get("url") if isinstance(inner, dict) else inner
            detail = inner.get("detail") if isinstance(inner, dict) else None
        elif kind == "input_image":
            url, detail = part.get("image_url"), part.get("detail")
            if part.get("file_id"):
                raise bad_request(
                    f"Unsupported '{where}.file_id': this server has no file store; send the "
                    "image as a data URL or an https URL in 'image_url'.",
                    param=f"{where}.file_id",
                    code="unsupported_content_type",
                )
        else:
            raise bad_request(
                f"Unsupported content part '{where}' of type {kind!r}: text and images are "
                "supported.",
                param=where,
                code="unsupported_content_type",
            )
        if not isinstance(url, str) or not url.startswith(("data:", "https://", "http://")):
            raise bad_request(
                f"Invalid image URL in '{where}': expected a data URL "
                "(data:image/png;base64,...) or an http(s) URL.",
                param=where,
                code="invalid_image_url",
            )
        image: dict[str, Any] = {"url": url, "param": where}
        if isinstance(detail, str):
            image["detail"] = detail
        images.append(image)
    return "\n".join(texts), images


# --- chat completions: requests -------------------------------------------------------------


@dataclass
class ChatRequest:
    """A validated ``POST /v1/chat/completions`` body.

    Attributes:
        model: The requested model id (``hermes-agent`` or a configured model name).
        messages: The conversation without system messages, oldest first; the last is the
            user's.
        instructions: The system/developer messages' text: the client's own system prompt,
            added to the agent's for this request only.
        stream: Answer as server-sent events.
        include_usage: ``stream_options.include_usage``: a usage chunk before ``[DONE]``.
        user: OpenAI's end-user id, shown as the conversation's name.
        options: The client's tools, tool_choice, response_format and sampling parameters.
        tool_progress: The client asked for the agent's tool progress in its stream.
    """

    model: str
    messages: list[StoredMessage]
    instructions: str | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    options: TurnOptions = field(default_factory=TurnOptions)
    tool_progress: bool = False

    def new_turn(self) -> list[StoredMessage]:
        """What a continued session adds to its stored history: the trailing user messages,
        or the trailing tool results answering the client-run tool calls of the last turn."""
        start = len(self.messages)
        role = self.messages[-1].role
        while start > 0 and self.messages[start - 1].role == role:
            start -= 1
        return self.messages[start:]


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    """Validate a chat completions body; raises :class:`ApiError` (400) naming the field."""
    model = optional_str(body, "model") or AGENT_MODEL
    raw = body.get("messages")
    if raw is None:
        raise bad_request(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(raw, list):
        raise bad_request(
            "Invalid type for 'messages': expected an array.", "messages", "invalid_type"
        )
    if not raw:
        raise bad_request(
            "Invalid 'messages': empty array. Expected an array with at least one message.",
            "messages",
            "empty_array",
        )
    instructions: list[str] = []
    messages: list[StoredMessage] = []
    for i, item in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for '{param}': expected an object.", param)
        role = item.get("role")
        if role not in _ROLES:
            raise bad_request(
                f"Invalid value for '{param}.role': {role!r}. Supported values are: "
                "'system', 'developer', 'user', 'assistant' and 'tool'.",
                f"{param}.role",
                "invalid_value",
            )
        if role in ("system", "developer"):
            text = content_text(item.get("content"), f"{param}.content")
            if text.strip():
                instructions.append(text.strip())
            continue
        messages.append(_history_message(role, item, param))
    check_ends_turn(messages, f"messages[{len(raw) - 1}].role")
    options = _field(body, "stream_options", dict, {})
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise bad_request(
            "Invalid type for 'stream_options.include_usage': expected a boolean.",
            "stream_options.include_usage",
            "invalid_type",
        )
    problems = Problems()
    options = chat_options(body, problems)
    problems.raise_any()
    return ChatRequest(
        model=model,
        messages=messages,
        instructions="\n\n".join(instructions) or None,
        stream=optional_bool(body, "stream", False),
        include_usage=include_usage,
        user=optional_str(body, "user"),
        options=options,
    )


def check_ends_turn(messages: list[StoredMessage], param: str) -> None:
    """The agent answers a user message, or continues after the results of tool calls."""
    if messages and messages[-1].role in ("user", "tool"):
        return
    raise bad_request(
        "The last message must be the user's (the agent answers it) or the result of a "
        "tool call (the agent continues from it).",
        param,
    )


def user_message(content: Any, param: str) -> StoredMessage:
    """A user message; its images ride in ``meta["images"]`` until :mod:`.images` stores them."""
    text, images = content_parts(content, param)
    message = StoredMessage(role="user", content=text)
    if images:
        message.meta["images"] = images
    return message


def _history_message(role: str, item: dict[str, Any], param: str) -> StoredMessage:
    """A user/assistant/tool message of the client's history, checked enough that the model
    server will not reject the conversation for its shape."""
    if role == "user":
        return user_message(item.get("content"), f"{param}.content")
    text = content_text(item.get("content"), f"{param}.content")
    if role == "tool":
        call_id = item.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise bad_request(
                f"Missing required parameter: '{param}.tool_call_id'.",
                f"{param}.tool_call_id",
                "missing_required_parameter",
            )
        return StoredMessage(role="tool", content=text, tool_call_id=call_id)
    calls = item.get("tool_calls") if role == "assistant" else None
    if calls is not None:
        if not isinstance(calls, list) or not all(
            isinstance(c, dict)
            and isinstance(c.get("id"), str)
            and isinstance(c.get("function"), dict)
            and isinstance(c["function"].get("name"), str)
            for c in calls
        ):
            raise bad_request(
                f"Invalid '{param}.tool_calls': expected an array of function calls.",
                f"{param}.tool_calls",
            )
        return StoredMessage(role="assistant", content=text or None, tool_calls=calls or None)
    return StoredMessage(role=role, content=text)


def finish_reason(result: TurnResult) -> str:
    """``tool_calls`` when the turn ended on client tool calls; the model's own ``length`` or
    ``content_filter`` (a client asking for ``max_tokens`` must see it was cut); else ``stop``."""
    if result.client_calls:
        return "tool_calls"
    if result.finish_reason in ("length", "content_filter"):
        return result.finish_reason
    return "stop"


def turn_error(error: str, status: int | None) -> ApiError:
    """A failed turn as an API error: the model server's own status where it is the client's
    to act on (a parameter refused, a rate limit), 502 otherwise; its message passed on."""
    if status in (400, 413, 422):
        return ApiError(400, error, code="upstream_error")
    if status == 429:
        return ApiError(
            429, f"The agent could not answer: {error}", type="requests", code="rate_limit_exceeded"
        )
    return ApiError(502, f"The agent could not answer: {error}", type="server_error")


# --- chat completions: responses ------------------------------------------------------------


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    cid: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str,
    use: dict[str, int],
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object (``tool_calls``: client-run tools)."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
        message["content"] = text or None
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": use,
        "system_fingerprint": None,
    }


class ChunkWriter:
    """Builds the SSE frames of one streamed chat completion.

    OpenAI's order: a role chunk first, content chunks, a chunk with ``finish_reason``,
    with ``include_usage`` a last chunk with empty ``choices`` and the usage (every other
    chunk then carries ``"usage": null``), and ``data: [DONE]``.
    """

    def __init__(self, cid: str, created: int, model: str, include_usage: bool) -> None:
        self.cid, self.created, self.model = cid, created, model
        self.include_usage = include_usage
        # Everything before the delta is the same in every chunk: render it once.
        self._head = (
            f'data: {{"id":{dumps(cid)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{dumps(model)},"system_fingerprint":null,'
        ).encode()
        self._usage_null = b',"usage":null' if include_usage else b""

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"".join(
            (self._head, b'"choices":[', dumps(choice).encode(), b"]", self._usage_null, b"}\n\n")
        )

    def role(self) -> bytes:
        return self.chunk({"role": "assistant", "content": ""})

    def content(self, text: str) -> bytes:
        return self.chunk({"content": text})

    def finish(self, finish_reason: str) -> bytes:
        return self.chunk({}, finish_reason)

    def usage(self, use: dict[str, int]) -> bytes:
        return b"".join((self._head, b'"choices":[],"usage":', dumps(use).encode(), b"}\n\n"))

    def tool_calls(self, calls: list[dict[str, Any]]) -> bytes:
        """The client-run tool calls the turn ended on, one chunk each (whole arguments)."""
        return b"".join(
            self.chunk({"tool_calls": [{"index": i, **call}]}) for i, call in enumerate(calls)
        )

    def tool_progress(self, progress: dict[str, Any]) -> bytes:
        """Tool progress, for a client that asked for it, as an ordinary chunk whose delta
        is empty: every SDK's loop (``chunk.choices[0].delta.content``) reads it as nothing,
        and the progress rides beside it in ``hermes_tool_progress``. Never ``choices: []``,
        which breaks that loop."""
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}
        return b"".join(
            (
                self._head,
                b'"choices":[',
                dumps(choice).encode(),
                b"]",
                self._usage_null,
                b',"hermes_tool_progress":',
                dumps(progress).encode(),
                b"}\n\n",
            )
        )


TOOL_PROGRESS_EVENT = "hermes.tool.progress"
"""The name of tool progress in a Responses stream (the name Hermes Agent's clients know)."""


def sse_data(payload: dict[str, Any]) -> bytes:
    return f"data: {dumps(payload)}\n\n".encode()


def sse_event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {dumps(payload)}\n\n".encode()


SSE_DONE = b"data: [DONE]\n\n"
