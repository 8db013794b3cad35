"""The agent's model call: one streamed ``POST /chat/completions`` over a kept aiohttp session.

Why not the openai SDK here: a turn's body is already in the wire format, and all a turn
needs back is the SSE lines. Through ``AsyncOpenAI.post`` (httpx2, httpcore, anyio) one
streamed call cost about 1.3 ms of CPU, against 0.2 ms for the same call on aiohttp, which the
gateway already runs for its API server (bench/api_server.py: the SDK's request building and
transport were half of the gateway's CPU per API request). The SDK stays for everything else
(titles, compression summaries, ``/v1/models``), where a call is rare.

What the SDK did on this path is done here the same way: the key as a bearer token, the
connect timeout and the read timeout between chunks (``ModelConfig.timeout``), certifi's CA
bundle (or ``SSL_CERT_FILE``) for https, ``HTTP(S)_PROXY``/``NO_PROXY`` from the environment,
and an error status with the server's own message (:class:`ModelHttpError`). Retries are the
agent loop's.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from hermes_gateway.config import ModelConfig

if TYPE_CHECKING:  # aiohttp is imported on first use, like the openai SDK (after the TUI's
    import aiohttp  # first frame)
    import yarl

__all__ = ["ChatStreamClient", "ModelHttpError", "ssl_context"]

#: How much of an error body is read (servers send a small JSON envelope; a proxy's HTML page
#: must not be read whole).
ERROR_BODY_BYTES = 64 * 1024
_USER_AGENT = "hermes-tui"
#: Tool schemas whose JSON is kept (the agent's own and the latest client tools).
SCHEMA_CACHE = 64


class ModelHttpError(Exception):
    """The model server answered with an error status (``body``: its JSON, when it sent any)."""

    def __init__(self, status: int, body: Any, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after
        #: The server's words when it sent text rather than an OpenAI error envelope.
        self.message = body.strip() if isinstance(body, str) else ""


def ssl_context() -> ssl.SSLContext:
    """What httpx verifies with: ``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi's bundle,
    else the system's. About 100 ms of CPU: built off the loop (``ProviderPool.warm``)."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            pass
    return ssl.create_default_context(cafile=cafile, capath=capath)


class ChatStreamClient:
    """Streams chat completions from one OpenAI-compatible server; one per provider.

    The aiohttp session (and so its keep-alive connections) lives as long as the client. It
    belongs to the event loop it was first used on.
    """

    def __init__(self, model: ModelConfig, tls: ssl.SSLContext | None = None) -> None:
        self._base_url = model.base_url
        self._url: yarl.URL | None = None
        self._base_headers = {
            # Local servers (Ollama, llama.cpp) accept any key; some insist on one being sent.
            "Authorization": f"Bearer {model.api_key or 'no-key'}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "User-Agent": _USER_AGENT,
        }
        self._timeouts = (model.connect_timeout, model.timeout)
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None
        # id -> (the schema, its JSON); the schema is kept so its id cannot be reused.
        self._schemas: dict[int, tuple[dict[str, Any], str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._headers = self._base_headers
        self._proxy: tuple[yarl.URL | None, dict[str, str] | None] = (None, None)

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            import aiohttp

            self._url = _endpoint(self._base_url)
            self._loop = loop  # a session cannot move between loops (a test's, a CLI's)
            tls: ssl.SSLContext | bool = True
            if self._url.scheme == "https":
                tls = self._tls or ssl_context()
                self._tls = tls
            # No cap on connections: the API server's max_concurrency and the chats bound the
            # turns in flight, and each turn holds one connection while it streams.
            connector = aiohttp.TCPConnector(limit=0, ssl=tls, keepalive_timeout=30)
            connect, read = self._timeouts
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
            # Not ``trust_env``: with it aiohttp looks up the proxy variables and ~/.netrc in a
            # worker thread on every request (two thread hops per model call, a quarter of
            # the gateway's CPU at 32 API requests in flight). The address is fixed, so its
            # proxy is looked up once, here.
            proxy, proxy_headers = _env_proxy(self._url)
            self._headers = dict(self._base_headers)
            if proxy_headers and self._url.scheme != "https":
                # A plain-HTTP request goes to the proxy as it is: the header rides on it
                # (aiohttp puts proxy_headers only on the CONNECT of a tunnel).
                self._headers.update(proxy_headers)
                proxy_headers = None
            self._proxy = (proxy, proxy_headers)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The chunks of one streamed completion, parsed; ends at ``[DONE]`` or the body's end.

        Raises :class:`ModelHttpError` for an error status, ``json.JSONDecodeError`` for a
        chunk that is not JSON, and aiohttp's (or asyncio's) errors for the connection and
        the timeouts. The body is always read to its end, so the connection is kept.
        """
        session = self._open()
        assert self._url is not None  # set by _open
        data = self._encode(body)
        proxy, proxy_headers = self._proxy
        async with session.post(
            self._url, data=data, headers=self._headers, proxy=proxy, proxy_headers=proxy_headers
        ) as resp:
            if resp.status >= 400:
                raise await _status_error(resp)
            done = False
            pending = b""
            async for piece in resp.content.iter_any():
                lines = (pending + piece).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if done or not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True  # read on to the end: the connection is kept
                        continue
                    yield json.loads(payload)
            if not done and pending.startswith(b"data:"):
                payload = pending[5:].strip()
                if payload and payload != b"[DONE]":
                    yield json.loads(payload)

    def _encode(self, body: dict[str, Any]) -> bytes:
        """``body`` as JSON, its tool schemas from a cache: the agent's own schemas are the
        same dicts on every call and were most of the body (about 3 KB, 100 us to encode)."""
        tools = body.get("tools")
        if not tools:
            return json.dumps(body).encode()
        rest = json.dumps({k: v for k, v in body.items() if k != "tools"})
        parts = []
        for schema in tools:
            hit = self._schemas.get(id(schema))
            if hit is None or hit[0] is not schema:
                hit = (schema, json.dumps(schema))
                self._schemas[id(schema)] = hit
                while len(self._schemas) > SCHEMA_CACHE:  # a client's tools: new every call
                    del self._schemas[next(iter(self._schemas))]
            parts.append(hit[1])
        sep = ", " if rest != "{}" else ""
        return f'{rest[:-1]}{sep}"tools": [{", ".join(parts)}]}}'.encode()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _endpoint(base_url: str) -> yarl.URL:
    """``<base_url>/chat/completions``, its query kept (``?api-version=``...) and any
    ``user:password@`` left out: the key goes as the bearer token, and a password in the
    address must not be sent to whoever answers it."""
    import yarl

    base = yarl.URL(base_url)
    path = base.path.rstrip("/") + "/chat/completions"
    return base.with_user(None).with_path(path).with_query(base.query)


def _env_proxy(url: yarl.URL) -> tuple[yarl.URL | None, dict[str, str] | None]:
    """The proxy ``HTTP(S)_PROXY``/``ALL_PROXY`` name for ``url`` unless ``NO_PROXY`` exempts
    it (as httpx, and so the openai SDK, would), and its ``user:password@`` as the
    ``Proxy-Authorization`` header."""
    import urllib.request

    import aiohttp
    import yarl

    if url.host is None or urllib.request.proxy_bypass(url.host):
        return None, None
    proxies = urllib.request.getproxies()
    address = proxies.get(url.scheme) or proxies.get("all")
    if not address:
        return None, None
    proxy = yarl.URL(address if "://" in address else f"http://{address}")
    auth = aiohttp.BasicAuth.from_url(proxy)
    headers = {"Proxy-Authorization": auth.encode()} if auth is not None else None
    return proxy.with_user(None), headers


async def _status_error(resp: aiohttp.ClientResponse) -> ModelHttpError:
    raw = await resp.content.read(ERROR_BODY_BYTES)
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    retry_after: float | None
    try:
        retry_after = float(resp.headers["Retry-After"])
    except (KeyError, ValueError):
        retry_after = None
    return ModelHttpError(resp.status, body, retry_after)
