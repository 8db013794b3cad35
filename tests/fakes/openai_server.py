"""A scripted, OpenAI-compatible Chat Completions server for tests and benchmarks.

Why a fake and not a mock: the agent, the TUI and the benchmarks talk to model providers through
the real ``openai`` SDK, and the bugs that matter live on the wire (SSE framing, tool-call
fragments, error envelopes, Retry-After, stalled or dropped streams). This server speaks that
wire format on 127.0.0.1 so the real SDK (``AsyncOpenAI`` or sync ``OpenAI`` with
``base_url=fake.base_url``) can be pointed at it, and every reply is scripted by the test.

Three ways to run it:

* in the test's event loop: ``async with FakeOpenAI() as fake: ...``
* in a background thread, for the sync SDK or code that blocks: ``with FakeOpenAI() as fake: ...``
* as a separate process, for end-to-end tests of the installed ``hermes``:
  ``python -m tests.fakes.openai_server --port 0 --script replies.json`` prints
  ``READY http://127.0.0.1:PORT/v1`` and serves until SIGTERM/SIGINT; replies can be added
  later with ``POST /_control/enqueue`` and the received requests read with
  ``GET /_control/requests``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
_FINGERPRINT = "fp_fake0openai"

# Status -> (type, code, message) as OpenAI's API answers them.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", None, "You are not allowed to perform this request."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}


@dataclass
class ToolCallSpec:
    """One function call the scripted assistant makes.

    Attributes:
        name: Function name.
        arguments: A dict (serialised to JSON) or a raw string, sent verbatim so tests can
            script malformed arguments too.
        id: Tool call id; a fresh ``call_...`` id is generated when None.
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCallSpec:
        """Build from a JSON object (script files, the control endpoint)."""
        _reject_unknown(cls, data)
        return cls(**data)

    def arguments_json(self) -> str:
        """The arguments as the string OpenAI sends."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class ScriptedReply:
    """What the fake answers to one ``/chat/completions`` request.

    Attributes:
        text: Assistant content, streamed in ``chunk_size`` character pieces.
        tool_calls: Calls streamed after the text the way OpenAI does (a header chunk with
            index, id and function name, then argument fragments). Dicts are accepted too.
        chunk_size: Characters per content or argument chunk.
        delay: Seconds between chunks; for non-streaming and error replies, a total delay.
        first_token_delay: Seconds after the response headers before the first chunk.
        stall_after: After this many content/tool chunks (the opening role chunk is not
            counted) send nothing more and keep the connection open until the client gives up
            or the server stops. For non-streaming requests any value means "never answer".
        status: HTTP status; anything but 200 answers with OpenAI's error envelope.
        error_message: Overrides the default error message for ``status``.
        retry_after: Seconds for the ``Retry-After`` header (meant for 429/503).
        prompt_tokens: Usage override; default is a rough count (characters / 4, min 1).
        completion_tokens: Usage override; default is a rough count (characters / 4, min 1).
        finish_reason: Default ``"tool_calls"`` when there are tool calls, else ``"stop"``.
        hold_at: Before each of these chunk counts (the role chunk not counted), stop the
            stream until the test calls :meth:`FakeOpenAI.release`; ``held`` tells that a
            stream is waiting there. Lets a test look at the client while the answer is
            provably half-way, instead of hoping a sleep lands in the middle.
    """

    text: str = ""
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    chunk_size: int = 8
    delay: float = 0.0
    first_token_delay: float = 0.0
    stall_after: int | None = None
    status: int = 200
    error_message: str = ""
    retry_after: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    hold_at: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tool_calls = [
            ToolCallSpec.from_dict(call) if isinstance(call, dict) else call
            for call in self.tool_calls
        ]
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if self.stall_after is not None and self.stall_after < 0:
            raise ValueError("stall_after must be >= 0")
        if any(n < 0 for n in self.hold_at):
            raise ValueError("hold_at counts must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScriptedReply:
        """Build from a JSON object; unknown keys are an error so typos in scripts surface."""
        _reject_unknown(cls, data)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form accepted by :meth:`from_dict` (for scripts and the control API)."""
        return asdict(self)


def _reject_unknown(cls: type, data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")


def parse_replies(data: Any) -> list[ScriptedReply]:
    """Parse a JSON list (or a single object) of replies, as script files and /_control use."""
    items = data if isinstance(data, list) else [data]
    return [ScriptedReply.from_dict(item) for item in items]


def load_script(path: str | Path) -> list[ScriptedReply]:
    """Read a script file: a JSON list of :class:`ScriptedReply` objects."""
    return parse_replies(json.loads(Path(path).read_text(encoding="utf-8")))


def _message_text(content: Any) -> str:
    """Text of a message's content: a string, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def echo_reply(body: dict[str, Any]) -> ScriptedReply:
    """Default reply: ``"echo: "`` plus the last user message's text."""
    messages = body.get("messages") or []
    last_user = next(
        (m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"),
        {},
    )
    return ScriptedReply(text="echo: " + _message_text(last_user.get("content")))


def title_reply(body: dict[str, Any]) -> ScriptedReply:
    """A title from the first words of the exchange's question (what a small model does)."""
    text = _message_text(body["messages"][-1].get("content")) if body["messages"] else ""
    question = text.split("User:", 1)[-1].split("Assistant:", 1)[0]
    words = question.split()[:5]
    return ScriptedReply(text=" ".join(words).capitalize() or "Conversation")


def summary_reply(body: dict[str, Any]) -> ScriptedReply:
    """A short summary naming how much it covers (a real model's would be prose)."""
    messages = body.get("messages") or []
    text = _message_text(messages[-1].get("content")) if messages else ""
    return ScriptedReply(text=f"Summary of {text.count('[user]')} user turns: {text[:120]}")


def error_envelope(
    status: int, message: str = "", *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body for ``status``; ``message``/``code`` override the defaults."""
    err_type, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    return {
        "error": {
            "message": message or default_message,
            "type": err_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


def _rough_tokens(chars: int) -> int:
    return max(1, chars // 4)


def prompt_tokens_of(body: dict[str, Any]) -> int:
    """The prompt's size as the window check counts it: text / 4, tool calls included, plus
    a few tokens per message (a chat template's framing, as real servers count it). Reported
    usage stays the plain text / 4 that older tests expect."""
    chars = 0
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for m in messages:
        chars += len(_message_text(m.get("content")))
        for call in m.get("tool_calls") or []:
            if isinstance(call, dict):
                chars += len(json.dumps(call.get("function") or {}))
    return _rough_tokens(chars) + 4 * len(messages)


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


class _Completion:
    """Everything one reply needs to render, computed once per request."""

    def __init__(self, body: dict[str, Any], reply: ScriptedReply, default_model: str) -> None:
        self.reply = reply
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.model = str(body.get("model") or default_model)
        self.calls = [
            (call.id or "call_" + secrets.token_hex(12), call.name, call.arguments_json())
            for call in reply.tool_calls
        ]
        self.finish_reason = reply.finish_reason or ("tool_calls" if self.calls else "stop")
        prompt_chars = sum(
            len(_message_text(m.get("content")))
            for m in body.get("messages") or []
            if isinstance(m, dict)
        )
        completion_chars = len(reply.text) + sum(len(a) for _, _, a in self.calls)
        prompt = (
            reply.prompt_tokens if reply.prompt_tokens is not None else _rough_tokens(prompt_chars)
        )
        completion = (
            reply.completion_tokens
            if reply.completion_tokens is not None
            else _rough_tokens(completion_chars)
        )
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    def message(self) -> dict[str, Any]:
        """The non-streaming ``chat.completion`` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.reply.text if self.reply.text or not self.calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self.calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                for cid, name, args in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """One ``chat.completion.chunk`` with a single choice."""
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def role_chunk(self) -> dict[str, Any]:
        content = "" if self.reply.text or not self.calls else None
        return self.chunk({"role": "assistant", "content": content, "refusal": None})

    def paced_chunks(self) -> list[dict[str, Any]]:
        """Content pieces, then per tool call a header chunk and argument fragments."""
        size = self.reply.chunk_size
        chunks = [self.chunk({"content": piece}) for piece in _pieces(self.reply.text, size)]
        for index, (cid, name, args) in enumerate(self.calls):
            header = {
                "index": index,
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            chunks.append(self.chunk({"tool_calls": [header]}))
            chunks.extend(
                self.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in _pieces(args, size)
            )
        return chunks

    def finish_chunk(self) -> dict[str, Any]:
        return self.chunk({}, self.finish_reason)

    def usage_chunk(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
            "choices": [],
            "usage": self.usage,
        }


class FakeOpenAI:
    """Scripted OpenAI-compatible server on 127.0.0.1.

    Replies are consumed FIFO, one per ``/chat/completions`` request; when the queue is empty
    ``default(body)`` decides (echo by default). Counters and ``requests`` are plain attributes
    so tests can assert on them; ``wait_for_*`` methods wait on them without polling.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1`` once started.
        default: Reply factory used when the queue is empty.
        requests: Every parsed chat request body, in order (also scripted errors).
        active_streams: Streaming responses currently open.
        disconnects: Streams whose client went away before the end.
        held: Streams currently stopped at a ``hold_at`` point.
        holds_reached: ``hold_at`` points reached so far (released or not).
    """

    def __init__(
        self, *, api_key: str | None = "test-key", models: list[str] | None = None
    ) -> None:
        self.api_key = api_key
        self.models = list(models) if models else ["fake-model"]
        self.default: Callable[[dict[str, Any]], ScriptedReply] = echo_reply
        self.requests: list[dict[str, Any]] = []
        self.heads: list[tuple[str, str]] = []
        """(path with query, Authorization header) of each request in ``requests``."""
        self.title_requests: list[dict[str, Any]] = []
        """Session-title requests (header ``X-Hermes-Purpose: title``), kept apart."""
        self.titler: Callable[[dict[str, Any]], ScriptedReply] = title_reply
        self.compression_requests: list[dict[str, Any]] = []
        """Summary requests (header ``X-Hermes-Purpose: compression``), kept apart."""
        self.summarizer: Callable[[dict[str, Any]], ScriptedReply] = summary_reply
        self.active_streams = 0
        self.disconnects = 0
        self.held = 0
        self.holds_reached = 0
        self.port = 0
        self._releases = 0
        self._released: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[ScriptedReply] = deque()
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._waiters: list[tuple[Callable[[], bool], Callable[[], None]]] = []
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self.context_length: int | None = None
        """When set: the model's window. ``/v1/models`` reports it (``context_length``, as
        vLLM's ``max_model_len`` and OpenRouter do) and a prompt over it gets OpenAI's 400
        ``context_length_exceeded``."""
        self.overflows = 0
        """Requests refused for their size."""
        self.report_window = True
        """False: ``/v1/models`` keeps the window to itself (as OpenAI's own API does)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give the openai SDK."""
        if not self.port:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{HOST}:{self.port}/v1"

    @property
    def queued(self) -> int:
        """Scripted replies not yet consumed."""
        return len(self._queue)

    async def start(self, port: int = 0) -> None:
        """Bind 127.0.0.1:``port`` (0 picks a free port) and serve in the running loop."""
        if self._runner is not None:
            raise RuntimeError("FakeOpenAI already started")
        self._closing = asyncio.Event()
        self._released = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        # Clients send whole histories (the API server passes on up to 10 MB): no 1 MB cap.
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_post("/_control/enqueue", self._control_enqueue)
        app.router.add_get("/_control/requests", self._control_requests)
        app.router.add_get("/_control/state", self._control_state)
        # handler_cancellation: a client that hangs up cancels its handler, which is how a
        # stalled stream notices the disconnect. Short shutdown: stop() must be quick.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Close all connections (stalled streams included) and release the port."""
        if self._runner is None:
            return
        assert self._closing is not None
        self._closing.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self, port: int = 0, timeout: float = 5.0) -> None:
        """Serve from a private event loop in a daemon thread.

        Needed when the code under test blocks its own thread (the sync ``OpenAI`` client,
        or anything run outside an event loop).
        """
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI already running in a thread")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(port))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("FakeOpenAI thread did not start")
        if failure:
            thread.join(timeout)
            raise failure[0]
        self._thread, self._thread_loop = thread, loop

    def stop_thread(self, timeout: float = 5.0) -> None:
        """Stop a server started with :meth:`start_in_thread` and join its thread."""
        thread, loop = self._thread, self._thread_loop
        if thread is None or loop is None:
            return
        self._thread = self._thread_loop = None
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> FakeOpenAI:
        self.start_in_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_thread()

    # ------------------------------------------------------------------ scripting

    def enqueue(self, *replies: ScriptedReply) -> None:
        """Append replies; each ``/chat/completions`` request consumes one, in order."""
        self._queue.extend(replies)

    def _next_reply(self, body: dict[str, Any]) -> ScriptedReply:
        try:
            return self._queue.popleft()
        except IndexError:
            return self.default(body)

    def release(self) -> None:
        """Let one stream stopped at a ``hold_at`` point go on (from any thread)."""
        if self._loop is None:
            raise RuntimeError("FakeOpenAI is not started")

        def grant() -> None:
            assert self._released is not None
            self._releases += 1
            self._released.set()

        self._loop.call_soon_threadsafe(grant)

    async def _hold(self) -> bool:
        """Wait for :meth:`release`; True if the server stops first."""
        assert self._closing is not None and self._released is not None
        self.held += 1
        self.holds_reached += 1
        self._notify()
        try:
            while not self._releases:
                self._released.clear()
                released = asyncio.ensure_future(self._released.wait())
                closing = asyncio.ensure_future(self._closing.wait())
                try:
                    await asyncio.wait((released, closing), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    released.cancel()
                    closing.cancel()
                if self._closing.is_set():
                    return True
            self._releases -= 1
            return False
        finally:
            self.held -= 1
            self._notify()

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        """Wake every waiter whose condition now holds (any thread, any loop)."""
        with self._lock:
            due = [w for w in self._waiters if w[0]()]
            for waiter in due:
                self._waiters.remove(waiter)
        for _, fire in due:
            fire()

    def _describe(self) -> str:
        return (
            f"requests={len(self.requests)} active_streams={self.active_streams} "
            f"disconnects={self.disconnects} held={self.held} queued={self.queued}"
        )

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true; it is re-checked whenever the fake's state changes.

        Raises:
            TimeoutError: the condition did not hold within ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waiter = (predicate, lambda: loop.call_soon_threadsafe(event.set))
        with self._lock:
            if predicate():
                return
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"FakeOpenAI: condition not met ({self._describe()})") from None
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def wait_until_sync(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Blocking :meth:`wait_until`, for threaded mode and sync tests."""
        event = threading.Event()
        waiter = (predicate, event.set)
        with self._lock:
            if predicate():
                return
            self._waiters.append(waiter)
        try:
            if not event.wait(timeout):
                raise TimeoutError(f"FakeOpenAI: condition not met ({self._describe()})")
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``n`` chat requests arrived; return the first ``n`` bodies."""
        await self.wait_until(lambda: len(self.requests) >= n, timeout)
        return self.requests[:n]

    def wait_for_requests_sync(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Blocking :meth:`wait_for_requests`."""
        self.wait_until_sync(lambda: len(self.requests) >= n, timeout)
        return self.requests[:n]

    async def wait_for_disconnects(self, n: int, timeout: float = 5.0) -> None:
        """Wait until ``n`` streams were abandoned by their clients."""
        await self.wait_until(lambda: self.disconnects >= n, timeout)

    # ------------------------------------------------------------------ HTTP handlers

    def _headers(self) -> dict[str, str]:
        return {"x-request-id": "req_" + secrets.token_hex(16), "openai-version": "2020-10-01"}

    def _error(
        self,
        status: int,
        message: str = "",
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> web.Response:
        headers = self._headers()
        if retry_after is not None:
            headers["Retry-After"] = (
                str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            )
        return web.json_response(
            error_envelope(status, message, param=param, code=code),
            status=status,
            headers=headers,
        )

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        auth = request.headers.get("Authorization", "")
        if auth == f"Bearer {self.api_key}":
            return None
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:
            key = auth[7:].strip()
            shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            message = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
        return self._error(401, message, code="invalid_api_key")

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server stops first; True if it is stopping."""
        assert self._closing is not None
        if seconds <= 0:
            return self._closing.is_set()
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _hang(self, request: web.Request) -> None:
        """Keep the connection silent until the client leaves (cancels us) or stop()."""
        assert self._closing is not None
        await self._closing.wait()
        self._drop(request)

    @staticmethod
    def _drop(request: web.Request) -> None:
        """Cut the connection so the client sees an aborted response, not a clean end."""
        if request.transport is not None:
            request.transport.close()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.)",
            )
        if not isinstance(body, dict):
            return self._error(400, "The request body must be a JSON object.")
        if not isinstance(body.get("messages"), list):
            return self._error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if request.headers.get("X-Hermes-Purpose") == "title":
            # Hermes' session-title request: answered apart, so scripts and request counts
            # stay about the conversation's turns.
            self.title_requests.append(body)
            self._notify()
            reply = self.titler(body)
        elif request.headers.get("X-Hermes-Purpose") == "compression":
            self.compression_requests.append(body)
            self._notify()
            if (refused := self._too_long(body)) is not None:
                return refused
            reply = self.summarizer(body)
        else:
            self.heads.append((request.path_qs, request.headers.get("Authorization", "")))
            self.requests.append(body)
            self._notify()
            if (refused := self._too_long(body)) is not None:
                return refused
            reply = self._next_reply(body)
        if reply.status != 200:
            if await self._pause(reply.first_token_delay + reply.delay):
                self._drop(request)
                return web.Response(status=503)
            return self._error(reply.status, reply.error_message, retry_after=reply.retry_after)
        completion = _Completion(body, reply, self.models[0])
        if body.get("stream"):
            return await self._stream(request, completion)
        if reply.stall_after is not None:
            await self._hang(request)
            return web.Response(status=503)
        if await self._pause(reply.first_token_delay + reply.delay):
            self._drop(request)
            return web.Response(status=503)
        return web.json_response(completion.message(), headers=self._headers())

    async def _stream(self, request: web.Request, completion: _Completion) -> web.StreamResponse:
        reply = completion.reply
        response = web.StreamResponse(
            headers={
                **self._headers(),
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        self.active_streams += 1
        self._notify()
        try:
            await response.prepare(request)
            if await self._pause(reply.first_token_delay):
                self._drop(request)
                return response
            await response.write(_sse(completion.role_chunk()))
            for sent, chunk in enumerate(completion.paced_chunks()):
                if reply.stall_after is not None and sent >= reply.stall_after:
                    await self._hang(request)
                    return response
                if sent and await self._pause(reply.delay):
                    self._drop(request)
                    return response
                if sent in reply.hold_at and await self._hold():
                    self._drop(request)
                    return response
                await response.write(_sse(chunk))
            if reply.stall_after is not None:
                await self._hang(request)
                return response
            await response.write(_sse(completion.finish_chunk()))
            if completion.include_usage:
                await response.write(_sse(completion.usage_chunk()))
            await response.write(_sse("[DONE]"))
            await response.write_eof()
            return response
        except ConnectionError:
            self.disconnects += 1
            raise
        except asyncio.CancelledError:
            assert self._closing is not None
            if not self._closing.is_set():
                self.disconnects += 1
            raise
        finally:
            self.active_streams -= 1
            self._notify()

    async def _list_models(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        return web.json_response(
            {"object": "list", "data": [self._model(m) for m in self.models]},
            headers=self._headers(),
        )

    async def _get_model(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return self._error(404, f"The model '{model}' does not exist", param="model")
        return web.json_response(self._model(model), headers=self._headers())

    def _model(self, model: str) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": model,
            "object": "model",
            "created": 1700000000,
            "owned_by": "fake",
        }
        if self.context_length is not None and self.report_window:
            info["context_length"] = info["max_model_len"] = self.context_length
        return info

    def _too_long(self, body: dict[str, Any]) -> web.Response | None:
        """OpenAI's answer to a prompt longer than the window (counted as the usage is)."""
        if self.context_length is None:
            return None
        tokens = prompt_tokens_of(body)
        wanted = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        if tokens + int(wanted) <= self.context_length:
            return None
        self.overflows += 1
        return self._error(
            400,
            f"This model's maximum context length is {self.context_length} tokens. However, "
            f"your messages resulted in {tokens} tokens. Please reduce the length of the "
            "messages.",
            param="messages",
            code="context_length_exceeded",
        )

    async def _control_enqueue(self, request: web.Request) -> web.Response:
        try:
            replies = parse_replies(json.loads(await request.read()))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.enqueue(*replies)
        return web.json_response({"queued": self.queued})

    async def _control_requests(self, request: web.Request) -> web.Response:
        # ?last=N: a long benchmark's recording is too big to send whole.
        last = request.query.get("last", "")
        return web.json_response(self.requests[-int(last) :] if last.isdigit() else self.requests)

    async def _control_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": len(self.requests),
                "queued": self.queued,
                "active_streams": self.active_streams,
                "disconnects": self.disconnects,
            }
        )


# ---------------------------------------------------------------------- standalone


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeOpenAI(api_key=args.api_key or None, models=args.model or None)
    if args.script:
        fake.enqueue(*load_script(args.script))
    await fake.start(args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {fake.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the fake as a process (for end-to-end tests of the installed app)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.openai_server",
        description="Scripted OpenAI-compatible Chat Completions server on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: free port)")
    parser.add_argument("--script", help="JSON list of ScriptedReply objects, served in order")
    parser.add_argument(
        "--api-key", default="test-key", help="required bearer key ('' disables auth)"
    )
    parser.add_argument("--model", action="append", help="model id for /v1/models (repeatable)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
