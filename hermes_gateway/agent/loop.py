"""The agent: stream a chat completion, run the tools it asks for, repeat.

The agent is a plain async object with no knowledge of platforms, sessions or screens. It is
handed the history and a sink; it streams text and tool events into the sink and returns
the new messages to store. Interrupting it (``ctx.interrupt``) stops the stream or the running
tool at once and keeps what was said so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hermes_gateway.agent.chat_stream import ChatStreamClient, ModelHttpError
from hermes_gateway.agent.context import estimate_tokens
from hermes_gateway.agent.provider import ProviderPool
from hermes_gateway.agent.tools.base import ToolContext
from hermes_gateway.agent.tools.registry import ToolRegistry
from hermes_gateway.config import ModelConfig
from hermes_gateway.redact import redact, redact_url
from hermes_gateway.store.records import StoredMessage
from hermes_gateway.text import clip

log = logging.getLogger(__name__)

RETRY_CAP_SECONDS = 30.0
#: Tool arguments and output published for screens are cut to this many characters.
SHOWN_CHARS = 8_000


class TurnSink(Protocol):
    """Where the agent reports progress while a turn runs; every method must be cheap."""

    def on_delta(self, text: str) -> None: ...
    def on_tool_started(
        self, call_id: str, name: str, preview: str, arguments: str = ""
    ) -> None: ...
    def on_tool_finished(
        self, call_id: str, name: str, ok: bool, duration: float, summary: str, output: str = ""
    ) -> None: ...
    def on_notice(self, text: str, level: str) -> None: ...
    def on_step(self, iteration: int, tools: list[dict[str, Any]]) -> None:
        """Before each model call of the turn (from 1), with the previous step's tool calls
        (``name``, ``arguments``, ``result``); hooks' ``agent:step``."""
        ...


@dataclass
class TurnOptions:
    """What a caller (the HTTP API's client) asks of the model beyond the agent's defaults.

    Attributes:
        client_tools: Function tools (chat-completions shape) the caller runs itself. They are
            offered beside the agent's own (a client tool shadows an agent tool of the same
            name); when the model calls one the turn ends and the call goes back to the caller
            (``TurnResult.client_calls``), whose next request carries the result.
        tool_choice: The caller's ``tool_choice``, sent with the turn's first completion (a
            forced or required call applies to that step; later steps are the agent's own),
            except ``"none"``, which holds for the whole turn.
        params: Sampling and format parameters (``temperature``, ``response_format``, ...)
            sent as they are with every completion of the turn.
    """

    client_tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def client_names(self) -> frozenset[str]:
        return frozenset(t["function"]["name"] for t in self.client_tools)


@dataclass
class TurnResult:
    text: str
    messages: list[StoredMessage] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    interrupted: bool = False
    error: str | None = None
    error_status: int | None = None
    """The model server's HTTP status when it refused or failed (the API passes it on)."""
    client_calls: list[dict[str, Any]] = field(default_factory=list)
    """Calls of caller-run tools (``TurnOptions.client_tools``) that ended the turn."""
    finish_reason: str | None = None
    """The model's reason for ending its last answer (``stop``, ``length``, ...)."""
    last_call_tokens: int = 0
    """Prompt + completion of the turn's last model call as the server counted them (tool
    schemas included): the context's size after the turn, when the server reports usage."""


class ModelError(Exception):
    """A failure worth telling the user about in words, never as a traceback."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


@dataclass
class _Attempt:
    """What one streamed completion produced; readable even after cancellation."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    emitted: bool = False
    error_status: int | None = None
    finish_reason: str | None = None

    @property
    def content(self) -> str:
        return "".join(self.text)


class Agent:
    """Runs turns against one provider pool and one tool registry, shared by all sessions."""

    def __init__(
        self,
        pool: ProviderPool,
        tools: ToolRegistry,
        *,
        max_iterations: int = 20,
        max_retries: int = 3,
        retry_base_delay: float = 0.5,
    ) -> None:
        self.pool = pool
        self.tools = tools
        self.max_iterations = max_iterations
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay

    async def run_turn(
        self,
        *,
        model: ModelConfig,
        messages: list[dict[str, Any]],
        sink: TurnSink,
        ctx: ToolContext,
        use_tools: bool = True,
        options: TurnOptions | None = None,
        context_budget: int | None = None,
        steer: Callable[[], list[str]] | None = None,
    ) -> TurnResult:
        """Answer the last user message in ``messages`` (which this call does not modify).

        ``context_budget`` (tokens): when this turn's tool results would push the prompt past
        it, the model is sent shortened copies of them (the stored results stay whole), so a
        long output cannot overflow the window in the middle of a turn.

        ``steer``: asked after each step's tool results, before the next model call, for what
        the user said meanwhile; each text joins the turn as a user message there (stored
        with the turn, in order), so the model reads it without the work so far being lost.
        A turn that ends without another step leaves it to the caller.
        """
        options = options or TurnOptions()
        if not model.configured:
            return TurnResult(
                text="",
                error="No model is configured. Set model.base_url and model.name in "
                "config.yaml (or OPENAI_BASE_URL and HERMES_MODEL).",
            )
        client = self.pool.chat_for(model)
        history = list(messages)
        result = TurnResult(text="")
        shown: list[str] = []  # all assistant text of this turn, as the user saw it
        client_names = options.client_names
        schemas = [
            s
            for s in (self.tools.schemas() if use_tools else [])
            if s["function"]["name"] not in client_names
        ]
        # Only what this turn offered may run: withholding the schema is not enough, a model
        # (or whoever wrote the prompt) can still name any tool it knows of.
        offered = frozenset(s["function"]["name"] for s in schemas)
        schemas = [*schemas, *options.client_tools]

        step_tools: list[dict[str, Any]] = []
        for iteration in range(self.max_iterations):
            sink.on_step(iteration + 1, step_tools)
            step_tools = []
            if iteration and shown and not shown[-1].endswith("\n\n"):
                sink.on_delta("\n\n")
                shown.append("\n\n")
            extra = dict(options.params)
            if schemas and options.tool_choice is not None:
                if iteration == 0 or options.tool_choice == "none":
                    extra["tool_choice"] = options.tool_choice
            attempt, error, interrupted = await self._complete(
                client, model, history, schemas, sink, ctx.interrupt, extra
            )
            result.prompt_tokens += attempt.prompt_tokens
            result.completion_tokens += attempt.completion_tokens
            if attempt.prompt_tokens:
                result.last_call_tokens = attempt.prompt_tokens + attempt.completion_tokens
            shown.append(attempt.content)
            if error is not None or interrupted or not attempt.calls:
                final = StoredMessage(
                    role="assistant",
                    content=attempt.content,
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    interrupted=interrupted,
                )
                if attempt.content or not result.messages or interrupted:
                    result.messages.append(final)
                result.error, result.interrupted = error, interrupted
                result.error_status = attempt.error_status
                result.finish_reason = attempt.finish_reason
                result.text = "".join(shown).strip()
                return result

            calls = [attempt.calls[i] for i in sorted(attempt.calls)]
            assistant = StoredMessage(
                role="assistant",
                content=attempt.content or None,
                tool_calls=[
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"] or "{}"},
                    }
                    for c in calls
                ],
            )
            result.messages.append(assistant)
            history.append(assistant.to_openai())
            mine = [c for c in calls if c["name"] not in client_names]
            if len(mine) < len(calls):
                # The caller runs its own tools: the agent's calls of this step run now, the
                # caller's go back to it and its next request continues from their results.
                for call in mine:
                    tool_msg = (
                        (await self._run_tool(call, sink, ctx))[0]
                        if call["name"] in offered
                        else _refuse_unoffered(call, sink)
                    )
                    result.messages.append(tool_msg)
                result.client_calls = [
                    t for t in assistant.tool_calls or [] if t["function"]["name"] in client_names
                ]
                result.text = "".join(shown).strip()
                return result
            for index, call in enumerate(calls):
                if call["name"] in offered:
                    tool_msg, stopped = await self._run_tool(call, sink, ctx)
                else:
                    tool_msg, stopped = _refuse_unoffered(call, sink), False
                result.messages.append(tool_msg)
                history.append(tool_msg.to_openai())
                step_tools.append(
                    {
                        "name": call["name"],
                        "arguments": call["arguments"],
                        "result": tool_msg.content,
                    }
                )
                if context_budget is not None:
                    fit_tool_results(history, len(messages), context_budget)
                if stopped:
                    # Every tool call needs an answer or the history is invalid next turn.
                    result.messages.extend(
                        StoredMessage(
                            role="tool",
                            content="not run: the user interrupted",
                            tool_call_id=rest["id"],
                            name=rest["name"],
                        )
                        for rest in calls[index + 1 :]
                    )
                    result.interrupted = True
                    result.text = "".join(shown).strip()
                    return result
            for text in steer() if steer is not None else ():
                said = StoredMessage(role="user", content=text, meta={"steered": True})
                result.messages.append(said)
                history.append(said.to_openai())

        note = f"(stopped after {self.max_iterations} tool steps)"
        sink.on_notice(note, "warning")
        result.text = "".join(shown).strip()
        result.error = note
        return result

    # --- one streamed completion, with retries ----------------------------------------

    async def _complete(
        self,
        client: ChatStreamClient,
        model: ModelConfig,
        history: list[dict[str, Any]],
        schemas: list[dict[str, Any]],
        sink: TurnSink,
        interrupt: asyncio.Event,
        extra: dict[str, Any],
    ) -> tuple[_Attempt, str | None, bool]:
        attempt = _Attempt()
        for tries in range(self.max_retries + 1):
            attempt = _Attempt()
            try:
                done, _ = await _race(
                    self._stream(client, model, history, schemas, sink, attempt, extra), interrupt
                )
            except ModelError as exc:
                if attempt.emitted or not exc.retryable or tries == self.max_retries:
                    attempt.error_status = exc.status
                    return attempt, str(exc), False
                delay = min(
                    exc.retry_after
                    if exc.retry_after is not None
                    else self.retry_base_delay * 2**tries * (1 + random.random() / 4),
                    RETRY_CAP_SECONDS,
                )
                sink.on_notice(
                    f"{exc} Retrying in {delay:.1f}s ({tries + 1}/{self.max_retries})...",
                    "warning",
                )
                if not await _sleep_unless(delay, interrupt):
                    return attempt, None, True
                continue
            return attempt, None, not done
        return attempt, "the model did not answer", False

    async def _stream(
        self,
        client: ChatStreamClient,
        model: ModelConfig,
        history: list[dict[str, Any]],
        schemas: list[dict[str, Any]],
        sink: TurnSink,
        attempt: _Attempt,
        extra: dict[str, Any],
    ) -> None:
        body: dict[str, Any] = {
            **extra,
            "model": model.name,
            "messages": history,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if schemas:
            body["tools"] = schemas
        try:
            # Our own aiohttp client, not the SDK (see chat_stream.py): the body goes out as it
            # is (our messages are already in the wire format) and each SSE chunk is parsed
            # with json.loads, not built into a pydantic model.
            async with contextlib.aclosing(client.stream(body)) as chunks:
                async for chunk in chunks:
                    _apply_chunk(chunk, attempt, sink)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _as_model_error(exc, model) from exc
        for index, entry in attempt.calls.items():
            if not entry["id"]:
                entry["id"] = f"call_{index}_{int(time.time() * 1000)}"

    # --- tools ------------------------------------------------------------------------

    async def _run_tool(
        self, call: dict[str, str], sink: TurnSink, ctx: ToolContext
    ) -> tuple[StoredMessage, bool]:
        name, raw = call["name"], call["arguments"]
        # Arguments that do not parse are still shown, clipped, so the operator sees them.
        preview = self.tools.preview(name, raw) or (raw or "")[:80]
        sink.on_tool_started(call["id"], name, preview, (raw or "")[:SHOWN_CHARS])
        started = time.monotonic()
        try:
            finished, value = await _race(self.tools.call(name, raw, ctx), ctx.interrupt)
        except Exception as exc:  # the registry promises not to raise; belt and braces
            log.exception("tool %s failed", name)
            finished, value = True, None
            content, ok, summary = f"error: {exc}", False, "failed"
        stopped = not finished
        if stopped:
            content, ok, summary = "interrupted by the user", False, "interrupted"
        elif value is not None:
            content, ok, summary = value.content, value.ok, value.summary
        duration = time.monotonic() - started
        sink.on_tool_finished(call["id"], name, ok, duration, summary, content[:SHOWN_CHARS])
        message = StoredMessage(
            role="tool",
            content=content,
            tool_call_id=call["id"],
            name=name,
            # For screens that show the call again as it was shown live; never sent to a model.
            meta={"ok": ok, "summary": summary, "duration": round(duration, 3)},
        )
        return message, stopped


def _refuse_unoffered(call: dict[str, str], sink: TurnSink) -> StoredMessage:
    """Answer a call to a tool the turn did not offer without running it.

    The history still needs a tool message for the call id; the Notice tells the person
    watching that the model tried.
    """
    name = call["name"]
    log.warning("refused a call to tool %r, which this turn did not offer", name)
    sink.on_notice(f"refused a call to {name!r}: that tool is not offered in this turn", "warning")
    return StoredMessage(
        role="tool",
        content=f"error: tool {name!r} is not available in this conversation; it was not run",
        tool_call_id=call["id"],
        name=name,
    )


def _apply_chunk(chunk: dict[str, Any], attempt: _Attempt, sink: TurnSink) -> None:
    """Fold one chat.completion.chunk (as parsed JSON) into the attempt."""
    if "error" in chunk:  # some servers report failures mid-stream
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise ModelError(f"The model server reported an error: {message}", retryable=False)
    usage = chunk.get("usage")
    if usage:
        attempt.prompt_tokens = usage.get("prompt_tokens") or 0
        attempt.completion_tokens = usage.get("completion_tokens") or 0
    choices = chunk.get("choices")
    if not choices:
        return
    if choices[0].get("finish_reason"):
        attempt.finish_reason = choices[0]["finish_reason"]
    delta = choices[0].get("delta")
    if not delta:
        return
    content = delta.get("content")
    if content:
        attempt.text.append(content)
        attempt.emitted = True
        sink.on_delta(content)
    for tc in delta.get("tool_calls") or ():
        entry = attempt.calls.setdefault(
            tc.get("index", 0), {"id": "", "name": "", "arguments": ""}
        )
        if tc.get("id"):
            entry["id"] = tc["id"]
        function = tc.get("function") or {}
        if function.get("name"):
            entry["name"] += function["name"]
        if function.get("arguments"):
            entry["arguments"] += function["arguments"]


async def _race(coro: Any, interrupt: asyncio.Event) -> tuple[bool, Any]:
    """Run ``coro`` until it finishes or ``interrupt`` is set.

    Returns ``(True, result)`` when it finished and ``(False, None)`` when interrupted (the
    coroutine is cancelled). Exceptions from the coroutine propagate. One watcher task per
    call, not per streamed chunk.
    """
    task = asyncio.ensure_future(coro)
    if interrupt.is_set():
        task.cancel()
    waiter = asyncio.ensure_future(interrupt.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        waiter.cancel()
    if task.done() and not task.cancelled():
        return True, task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:  # raised while being cancelled: the turn is over anyway
        log.debug("error while interrupting", exc_info=True)
    return False, None


async def _sleep_unless(delay: float, interrupt: asyncio.Event) -> bool:
    """Sleep ``delay`` seconds; False if interrupted first."""
    try:
        await asyncio.wait_for(interrupt.wait(), timeout=delay)
    except TimeoutError:
        return True
    return False


def _as_model_error(exc: Exception, model: ModelConfig) -> ModelError:
    """Turn HTTP statuses and transport exceptions into one sentence a user can act on."""
    import aiohttp

    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, json.JSONDecodeError):
        return ModelError(
            f"The model server at {redact_url(model.base_url)} sent a stream that is not valid JSON.",
            retryable=False,
        )
    if isinstance(exc, ModelHttpError):
        return _status_error(exc, model)
    # aiohttp's read timeout is both a ClientError and a TimeoutError: asked first.
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return ModelError(
            f"The model server did not answer within {model.timeout:g}s.", retryable=True
        )
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return ModelError(
            f"Could not reach the model server at {redact_url(model.base_url)}.", retryable=True
        )
    log.exception("unexpected model error")
    return ModelError(
        f"Unexpected error from the model server: {redact(str(exc))}", retryable=False
    )


def _status_error(exc: ModelHttpError, model: ModelConfig) -> ModelError:
    status = exc.status
    if status == 401:
        return ModelError(
            f"The model server at {redact_url(model.base_url)} rejected the API key (401): check "
            "model.api_key in config.yaml or OPENAI_API_KEY.",
            retryable=False,
        )
    if status == 404:
        return ModelError(
            f"The model server at {redact_url(model.base_url)} does not know model '{model.name}' (404).",
            retryable=False,
            status=404,
        )
    if status == 429:
        return ModelError(
            f"The model server is rate limiting (429){_detail(exc)}",
            retryable=True,
            retry_after=exc.retry_after,
            status=429,
        )
    if status >= 500:
        return ModelError(
            f"The model server failed ({status}){_detail(exc)}",
            retryable=True,
            retry_after=exc.retry_after,
            status=status,
        )
    return ModelError(
        f"The model server refused the request ({status}){_detail(exc)}",
        retryable=False,
        status=status,
    )


def _detail(exc: Any) -> str:
    """``": <the server's own message>"`` (secrets redacted, clipped), or ``"."``."""
    text = redact(_error_message(exc)).strip()
    return f": {clip(text, 500)}" if text else "."


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))


SHORTENED = "\n[… output shortened to fit the model's context; the whole output is stored …]\n"


def fit_tool_results(history: list[dict[str, Any]], start: int, budget: int) -> None:
    """Shorten this turn's tool results (from ``history[start]`` on), longest first, in the
    model's copy of the history until it fits ``budget`` tokens or nothing long is left."""
    while estimate_tokens(history) > budget:
        results = [
            i
            for i in range(start, len(history))
            if history[i].get("role") == "tool" and len(str(history[i].get("content"))) > 600
        ]
        if not results:
            return
        i = max(results, key=lambda j: len(str(history[j]["content"])))
        text = str(history[i]["content"]).replace(SHORTENED, "")
        keep = len(text) // 4
        history[i] = {**history[i], "content": text[:keep] + SHORTENED + text[-keep:]}
