"""A running gateway whose platform is the API server, for the API and webhook tests.

The adapter comes from ``remote_adapters()`` exactly as in production (API_SERVER_ENABLED),
bound to port 0 on 127.0.0.1, and is driven by real clients: the openai SDK (async, or sync
from a worker thread so the gateway's loop keeps running) and raw aiohttp requests where the
wire format itself is under test.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI, OpenAI

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.api.server import ApiServerAdapter
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder

KEY = "test-api-key-0123456789"


class ApiHarness:
    def __init__(self, gateway: Gateway, recorder: Recorder) -> None:
        self.gw = gateway
        self.rec = recorder

    @property
    def adapter(self) -> ApiServerAdapter:
        assert self.gw.runner is not None
        adapter = self.gw.runner.adapters["api"]
        assert isinstance(adapter, ApiServerAdapter)
        return adapter

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def client(self, **kwargs: Any) -> AsyncOpenAI:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 10)
        return AsyncOpenAI(base_url=self.base_url, **kwargs)

    def sync_client(self, **kwargs: Any) -> OpenAI:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 10)
        return OpenAI(base_url=self.base_url, **kwargs)

    def states(self) -> list[ev.PlatformStatus]:
        return [e for e in self.rec.of(ev.PlatformStatus) if e.platform == "api"]

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        """POST with aiohttp; returns (status, headers, body bytes)."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if auth:
            sent.setdefault("Authorization", f"Bearer {KEY}")
        data = raw if raw is not None else json.dumps(body).encode()
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.root + path, data=data, headers=sent) as resp,
        ):
            return resp.status, dict(resp.headers), await resp.read()

    async def get(self, path: str, *, auth: bool = True) -> tuple[int, dict[str, str], bytes]:
        headers = {"Authorization": f"Bearer {KEY}"} if auth else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.root + path, headers=headers) as resp,
        ):
            return resp.status, dict(resp.headers), await resp.read()

    async def stop(self) -> None:
        self.rec.close()
        await self.gw.stop()


async def start_api(
    home: Path,
    fake: FakeOpenAI,
    *,
    configure: Callable[[Config], None] | None = None,
    wait: bool = True,
    **env: str,
) -> ApiHarness:
    env.setdefault("API_SERVER_KEY", KEY)
    config = make_config(home, fake, API_SERVER_ENABLED="true", API_SERVER_PORT="0", **env)
    if configure is not None:
        configure(config)
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    await gateway.start(local=False)
    harness = ApiHarness(gateway, recorder)
    if wait:
        await recorder.wait_for(
            lambda: any(s.state in ("connected", "failed") for s in harness.states())
        )
    return harness


def sse_frames(body: bytes) -> list[tuple[str | None, str]]:
    """Split an SSE body into (event name, data) frames, in order."""
    frames: list[tuple[str | None, str]] = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        frames.append((event, "\n".join(data)))
    return frames


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any connection to an address but 127.0.0.1 / ::1 fail loudly in this test.

    The third-party clients under test (Agents SDK tracing, litellm's cost map, LangSmith)
    have ways of reaching the internet; a test that would must fail, not quietly try.
    """
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
                raise AssertionError(f"a test tried to connect to {address!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
