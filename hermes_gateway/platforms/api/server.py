"""The OpenAI-compatible HTTP API as a gateway platform (aiohttp, in the gateway's loop).

Any client that speaks the OpenAI API (the openai SDK, Open WebUI, LibreChat, the ``llm``
CLI, ...) talks to the whole agent, tools and sessions included:

* ``POST /v1/chat/completions``: stateless by default (the messages sent are the history; the
  exchange is still stored as a new session, whose id comes back in ``X-Hermes-Session-Id``).
  Sending that header continues the stored session: only the new user message is taken from
  the request, the rest of the history comes from the store. Streaming follows OpenAI's
  chunk format. The agent's own tool runs are not the client's: they never come back as
  tool calls, and their progress is streamed only to a client that asks for it (see
  :mod:`.options`), in chunks whose delta is empty. The client's own ``tools`` are offered
  to the model; a call of one ends the answer with that tool call for the client to run.
* ``POST /v1/responses`` (see :mod:`.api_responses`), ``GET /v1/models``, ``GET /health``.
* ``POST /webhooks/<route>`` (see :mod:`.webhook`), signed per route instead of the API key.

Every turn is stored and published like a chat's, so API sessions show live in the TUI. A
client that hangs up interrupts its run (aiohttp cancels the handler, which interrupts the
turn; the turn still stores what was said). Beyond ``max_concurrency`` running turns the
server answers 429 with Retry-After rather than queueing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import Config
from hermes_gateway.models import SessionSource
from hermes_gateway.platforms.api.connections import ConnectionGuard, LogThrottle
from hermes_gateway.platforms.api.cors import Cors
from hermes_gateway.platforms.api.images import has_images, store_images
from hermes_gateway.platforms.api.openai_format import (
    AGENT_MODEL,
    SSE_DONE,
    ApiError,
    ChatRequest,
    ChunkWriter,
    completion,
    dumps,
    error_body,
    finish_reason,
    new_id,
    parse_chat_request,
    parse_json_object,
    sse_data,
    turn_error,
    usage,
)
from hermes_gateway.platforms.api.options import PROGRESS_HEADER, wants_progress
from hermes_gateway.platforms.api.responses import ResponsesApi
from hermes_gateway.platforms.api.stream import SSE_HEADERS, AnswerStream, TurnOutcome, run_turn
from hermes_gateway.platforms.api.webhook import WebhookRoutes
from hermes_gateway.platforms.base import (
    NULL_DELIVERY,
    FatalPlatformError,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.random_ids import token_hex
from hermes_gateway.store import StoredMessage

if TYPE_CHECKING:
    from hermes_gateway.hosts import ApiHost

log = logging.getLogger(__name__)

API_PLATFORM = "api"
SESSION_HEADER = "X-Hermes-Session-Id"
MIN_KEY_LENGTH = 16
RETRY_AFTER_SECONDS = 1
PAUSED_RETRY_AFTER = 30
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(body).encode(), status=status, headers=headers, content_type="application/json"
    )


def error_response(exc: ApiError) -> web.Response:
    return json_response(exc.body(), exc.status, exc.headers)


class ApiServerAdapter(PlatformAdapter):
    """Serves the OpenAI-compatible API and the webhooks on one aiohttp server."""

    name = API_PLATFORM

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.settings = config.platforms.api_server
        self.port = 0
        self.inflight = 0
        """Agent turns running for HTTP requests (chat, responses, webhooks)."""
        self.started_at = int(time.time())
        self.responses = ResponsesApi(self)
        self.webhooks = WebhookRoutes(self)
        self._key = self.settings.key.encode()
        self._site_runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._body_timeouts = LogThrottle(log)
        self.connections: ConnectionGuard | None = None
        """Admission, deadlines and counts of the server's connections (while started)."""

    # --- lifecycle ----------------------------------------------------------------------

    def _check_key(self) -> None:
        s = self.settings
        if len(s.key) < MIN_KEY_LENGTH:
            what = "is not set" if not s.key else f"has only {len(s.key)} characters"
            raise FatalPlatformError(
                f"API_SERVER_KEY {what}; the API server needs a key of at least "
                f"{MIN_KEY_LENGTH} characters (clients send it as 'Authorization: Bearer "
                "<key>'). Make one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/health", self._health)
        app.router.add_get("/v1/models", self._api(self._models))
        app.router.add_get("/v1/models/{model}", self._api(self._model))
        app.router.add_post("/v1/chat/completions", self._api(self._chat_completions))
        app.router.add_post("/v1/responses", self._api(self.responses.create))
        app.router.add_get("/v1/responses/{id}", self._api(self.responses.get))
        app.router.add_delete("/v1/responses/{id}", self._api(self.responses.delete))
        app.router.add_get("/v1/responses/{id}/input_items", self._api(self.responses.input_items))
        app.router.add_post("/webhooks/{route}", self._guarded(self.webhooks.handle))

    async def start(self) -> None:
        s = self.settings
        self._check_key()
        if not self.bound:
            raise FatalPlatformError("the API server must be added to a gateway")
        self.webhooks.validate()
        guard = ConnectionGuard(max_connections=s.max_connections, header_timeout=s.header_timeout)
        cors = Cors(s.cors_origins)
        # Platform webhooks (Twilio, WhatsApp) ride on this server when their adapters put
        # routes in the gateway's table: answered before the API's own routes and key, each
        # checked by its platform's own signature (see platforms/web_routes.py).
        platform_routes = self.host.web_routes
        middlewares = [guard.middleware, cors.preflight, _openai_errors]
        if self.name == API_PLATFORM:  # not the separate webhook listener
            middlewares.insert(1, platform_routes.middleware())
        app = web.Application(client_max_size=s.max_body_bytes, middlewares=middlewares)
        app.on_response_prepare.append(cors.add_headers)
        self._add_routes(app)
        # handler_cancellation: a client that hangs up cancels its handler, which is how a
        # run notices it is no longer wanted, even in the middle of a silent tool call.
        # lingering_time: after an early answer (413, 408) the rest of a body is read for at
        # most a second, not aiohttp's ten.
        site_runner = web.AppRunner(
            app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=2.0,
            lingering_time=1.0,
        )
        await site_runner.setup()
        assert site_runner.server is not None
        guard.server = site_runner.server
        try:
            # Our own listening socket instead of a TCPSite: its protocol factory is the
            # guard, which admits, times and counts connections before aiohttp sees them.
            listener = await asyncio.get_running_loop().create_server(
                guard.protocol, s.host, s.port, backlog=128
            )
        except BaseException:
            await site_runner.cleanup()
            raise
        self._site_runner, self._listener, self.connections = site_runner, listener, guard
        if self.name == API_PLATFORM:
            platform_routes.serve(self.name)
        self.port = listener.sockets[0].getsockname()[1]
        routes = len(self.settings.webhooks)
        extra = f", {routes} webhook route{'s' if routes != 1 else ''}" if routes else ""
        self.report("connected", f"http://{s.host}:{self.port}{extra}")

    async def stop(self) -> None:
        if self.bound:
            self.host.web_routes.unserve(self.name)
        await self.webhooks.stop()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # no new connections; the runner closes the open ones
        site_runner, self._site_runner = self._site_runner, None
        if site_runner is not None:
            await site_runner.cleanup()
        self.report("stopped")

    async def send(self, source: SessionSource, text: str) -> None:
        """HTTP clients get answers in their responses; nothing can be pushed to them later."""
        raise RuntimeError("the API server cannot send messages; clients read their responses")

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        return NULL_DELIVERY  # a turn started outside a request (operator message): no client

    # --- shared by the endpoints --------------------------------------------------------

    def _guarded(self, handler: Handler) -> Handler:
        """Turn ApiError into OpenAI's error envelope and any other failure into a 500."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except ApiError as exc:
                return error_response(exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s %s failed", request.method, request.path)
                return json_response(
                    error_body(
                        "The server had an error processing your request.", type="server_error"
                    ),
                    500,
                )

        return guarded

    def _api(self, handler: Handler) -> Handler:
        """Bearer-key check (constant time), then the handler, guarded."""
        inner = self._guarded(handler)

        async def authorized(request: web.Request) -> web.StreamResponse:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            given = token.strip().encode() if scheme.lower() == "bearer" else b""
            if not hmac.compare_digest(given, self._key):
                message = (
                    "Incorrect API key provided."
                    if given
                    else "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
                )
                return error_response(ApiError(401, message, code="invalid_api_key"))
            return await inner(request)

        return authorized

    async def read_body(self, request: web.Request) -> bytes:
        """The raw body; 413 beyond ``max_body_bytes``, 408 when it trickles in slower than
        ``body_timeout`` (the connection is closed after the answer)."""
        limit = self.settings.max_body_bytes
        size = request.content_length
        if size is not None and size > limit:
            raise _too_large(size, limit)
        timeout = self.settings.body_timeout or None
        try:
            async with asyncio.timeout(timeout):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large(size, limit) from None
        except TimeoutError:
            self._body_timeouts.warning(
                "API server: the body of %s %s did not arrive within %gs; dropped",
                request.method,
                request.path,
                timeout,
            )
            raise ApiError(
                408,
                f"The request body did not arrive within {timeout:g} seconds.",
                code="request_timeout",
                headers={"Connection": "close"},
            ) from None

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of ``max_concurrency`` turn slots; 429 with Retry-After when none is free."""
        limit = self.settings.max_concurrency
        if self.inflight >= limit:
            raise ApiError(
                429,
                f"Too many requests in progress (the limit is {limit}); retry shortly.",
                type="requests",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1

    @property
    def agent_model(self) -> str:
        """The agent's name on /v1/models (API_SERVER_MODEL_NAME, else ``hermes-agent``)."""
        return self.settings.model_name.strip() or AGENT_MODEL

    def model_override(self, requested: str) -> str | None:
        """The configured model a request names (None: the agent's own), or 404."""
        if requested in (AGENT_MODEL, self.agent_model):
            return None
        if requested in self.model_names():
            return requested
        known = ", ".join([self.agent_model, *self.model_names()])
        raise ApiError(
            404,
            f"The model '{requested}' does not exist. Available models: {known}.",
            param="model",
            code="model_not_found",
        )

    def check_vision(self, messages: list[StoredMessage], model_name: str | None) -> None:
        """400 naming the model when the request sends images to one that cannot see them."""
        where = has_images(messages)
        if where is None:
            return
        model = model_name or self.config.model.name
        if model in self.config.model.no_vision:
            raise ApiError(
                400,
                f"The model '{model}' cannot read images (it is listed in model.no_vision); "
                "send text only, or choose a model that can see.",
                param=where,
                code="model_not_vision_capable",
            )

    async def store_images(self, messages: list[StoredMessage]) -> None:
        """Save the data-URL images of ``messages`` under HERMES_HOME/media (see images.py)."""
        await store_images(messages, self.config.paths.media_dir)

    def model_names(self) -> list[str]:
        m = self.config.model
        names = [m.name, *m.models]
        return [n for i, n in enumerate(names) if n and n not in names[:i]]

    def session_source(self, request: web.Request, user: str | None) -> tuple[SessionSource, bool]:
        """The conversation of a request, and whether it continues a stored one (header)."""
        sid = request.headers.get(SESSION_HEADER, "").strip()
        continued = bool(sid)
        if not continued:
            sid = token_hex(8)
        elif not _SESSION_ID.match(sid):
            raise ApiError(
                400,
                f"Invalid {SESSION_HEADER}: use 1-128 letters, digits and . _ @ - characters.",
            )
        return self.source_for(sid, user), continued

    @staticmethod
    def source_for(sid: str, user: str | None = None) -> SessionSource:
        name = (user or "").strip()[:64] or "API client"
        return SessionSource(
            platform=API_PLATFORM, chat_id=sid, chat_type="dm", user_id=user, user_name=name
        )

    def gateway(self) -> ApiHost:
        """The gateway's API face (bound by the gateway as an ``ApiHost``), or 503."""
        if not self.bound:
            raise ApiError(503, "The gateway is not running.", type="server_error")
        return cast("ApiHost", self.host)

    def check_paused(self, source: SessionSource) -> None:
        """503 while the operator has paused the API (or this session) in the TUI.

        A paused chat platform stores messages for the operator to answer by hand; an HTTP
        client cannot be answered later, so it is told to come back instead.
        """
        paused = self.gateway().paused(source)
        if paused is None:
            return
        what = "The API" if paused == "platform" else "This session"
        raise ApiError(
            503,
            f"{what} is paused by the operator; try again later.",
            type="server_error",
            code="paused",
            headers={"Retry-After": str(PAUSED_RETRY_AFTER)},
        )

    # --- endpoints ----------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok", "platform": "hermes-agent"})

    def _model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": self.started_at, "owned_by": "hermes"}

    async def _models(self, request: web.Request) -> web.Response:
        names = [self.agent_model, *self.model_names()]
        return json_response({"object": "list", "data": [self._model_object(n) for n in names]})

    async def _model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        self.model_override(model)  # 404 when unknown
        return json_response(self._model_object(model))

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        raw = parse_json_object(await self.read_body(request))
        req = parse_chat_request(raw)
        req.tool_progress = wants_progress(raw, request.headers.get(PROGRESS_HEADER))
        model_name = self.model_override(req.model)
        source, continued = self.session_source(request, req.user)
        gateway = self.gateway()
        self.check_paused(source)
        messages = req.new_turn() if continued else req.messages
        self.check_vision(messages, model_name)
        await self.store_images(messages)
        with self.slot():
            answer = AnswerStream(streaming=req.stream, progress=req.tool_progress)
            turn = gateway.run_request(
                source,
                messages,
                delivery=answer,
                instructions=req.instructions,
                new_session=not continued,
                keep=continued,
                model_name=model_name,
                options=req.options,
            )
            headers = {SESSION_HEADER: source.chat_id}
            if req.stream:
                return await self._stream_chat(request, req, answer, turn, headers)
            _, result = await turn
            if result.error:
                raise turn_error(result.error, result.error_status)
            calls = result.client_calls
            body = completion(
                new_id("chatcmpl-"),
                int(time.time()),
                req.model,
                answer.text,
                finish_reason(result),
                usage(result.prompt_tokens, result.completion_tokens),
                calls,
            )
            return json_response(body, headers=headers)

    async def _stream_chat(
        self,
        request: web.Request,
        req: ChatRequest,
        answer: AnswerStream,
        turn: Awaitable[TurnOutcome],
        headers: dict[str, str],
    ) -> web.StreamResponse:
        task = asyncio.ensure_future(run_turn(answer, turn))
        response = web.StreamResponse(headers={**headers, **SSE_HEADERS})
        chunks = ChunkWriter(new_id("chatcmpl-"), int(time.time()), req.model, req.include_usage)
        try:
            await response.prepare(request)
            await response.write(chunks.role())
            while batch := await answer.next_batch():
                await response.write(
                    b"".join(
                        chunks.content(item)
                        if isinstance(item, str)
                        else chunks.tool_progress(item.as_dict())
                        for item in batch
                    )
                )
            try:
                _, result = await task
            except Exception as exc:
                log.exception("API turn failed")
                tail = sse_data(error_body(f"The turn failed: {exc}", type="server_error"))
            else:
                if result.error:
                    tail = sse_data(turn_error(result.error, result.error_status).body())
                else:
                    calls = result.client_calls
                    tail = chunks.tool_calls(calls) if calls else b""
                    tail += chunks.finish(finish_reason(result))
                    if req.include_usage:
                        tail += chunks.usage(usage(result.prompt_tokens, result.completion_tokens))
            # The end in one write (one packet, one wake-up of the client), not three.
            await response.write_eof(tail + SSE_DONE)
        except ConnectionError:
            log.debug("API client went away mid-stream")
        finally:
            if not task.done():
                task.cancel()  # interrupts the run; it still stores what was said
        return response


@web.middleware
async def _openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 404/405 (unknown path or method) in OpenAI's error format too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{request.method} {request.path}: {exc.reason}."
        if isinstance(exc, web.HTTPMethodNotAllowed):
            message = f"{request.method} is not allowed on {request.path}; use {', '.join(sorted(exc.allowed_methods))}."
        return json_response(error_body(message), exc.status)


def _too_large(size: int | None, limit: int) -> ApiError:
    got = f" ({size} bytes)" if size is not None else ""
    return ApiError(
        413,
        f"The request body is too large{got}; the limit is {limit} bytes.",
        code="request_too_large",
    )
