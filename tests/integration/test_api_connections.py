"""Connection floods before authentication: slowloris heads, trickling bodies, idle sockets.

Why: aiohttp drops neither a connection whose request head never completes nor one whose
body trickles, and limits nothing; 1,100 idle connections exhausted the gateway's file
descriptors, which starved Telegram, SQLite and the model client, and the logs filled up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hermes_gateway.config import Config
from hermes_gateway.platforms.api.connections import LogThrottle
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.api_harness import KEY, ApiHarness, start_api

WORKTREE = Path(__file__).resolve().parents[2]


def _fast_deadlines(config: Config) -> None:
    config.platforms.api_server.header_timeout = 0.5
    config.platforms.api_server.body_timeout = 0.5


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai, configure=_fast_deadlines)
    yield harness
    await harness.stop()


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (raises on timeout)."""
    received = b""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(4096):
                received += chunk
    return received


async def _health(root: str) -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"{root}/health") as resp,
    ):
        return resp.status


async def test_a_slowloris_head_is_dropped_while_others_are_served(api: ApiHarness) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.adapter.port)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000

    async def trickle() -> None:
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        assert await _health(api.root) == 200  # the server is not blocked meanwhile
        assert await _closed_by_server(reader, timeout=5) == b""  # dropped, no answer
    finally:
        sender.cancel()
        writer.close()
    guard = api.adapter.connections
    assert guard is not None and guard.timed_out == 1


async def test_an_idle_connection_is_dropped_and_a_used_one_after_its_answer(
    api: ApiHarness,
) -> None:
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", api.adapter.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", api.adapter.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive
    answer = await _closed_by_server(reader, timeout=5)
    assert answer.startswith(b"HTTP/1.1 200")
    assert await _closed_by_server(idle_reader, timeout=5) == b""
    idle_writer.close()
    writer.close()


async def test_a_trickling_body_gets_408_and_the_connection_closed(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.adapter.port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Length: 1000\r\n\r\n".encode()
    )

    async def trickle() -> None:
        for _ in range(1000):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        answer = await _closed_by_server(reader, timeout=5)
    finally:
        sender.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer
    assert fake_openai.requests == []


async def test_beyond_the_cap_the_oldest_idle_connections_make_room(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    def configure(config: Config) -> None:
        config.platforms.api_server.max_connections = 4
        config.platforms.api_server.header_timeout = 30

    api = await start_api(hermes_home, fake_openai, configure=configure)
    opened = []
    try:
        for _ in range(10):
            opened.append(await asyncio.open_connection("127.0.0.1", api.adapter.port))
        guard = api.adapter.connections
        assert guard is not None
        await api.rec.wait_for(lambda: guard.evicted >= 6 and len(guard.open) == 4)
        assert await _health(api.root) == 200  # an idle one made room for it
    finally:
        for _, writer in opened:
            writer.close()
        await api.stop()


def test_the_log_throttle_counts_what_it_leaves_out() -> None:
    import logging

    now = [0.0]
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("test.throttle")
    logger.addHandler(Collect())
    logger.propagate = False
    throttle = LogThrottle(logger, per_second=2, burst=3, clock=lambda: now[0])
    for _ in range(1000):
        throttle.warning("flood %s", "x")
    assert len(records) == 3 and throttle.suppressed == 997
    now[0] = 1.0
    throttle.warning("flood %s", "y")
    assert records[-1] == "flood y (997 similar events not logged)"


# --- the whole gateway under a lowered file-descriptor limit --------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lower_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def _flood(port: int, count: int) -> list[asyncio.StreamWriter]:
    """Open ``count`` connections that never send anything (those refused are fine)."""
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(3):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writers.append(writer)

    await asyncio.gather(*(one() for _ in range(count)))
    return writers


async def _slowloris(port: int, stop: asyncio.Event) -> None:
    with contextlib.suppress(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\n")
        while not stop.is_set():
            writer.write(b"X")
            with contextlib.suppress(OSError):
                await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        writer.close()


@pytest.mark.slow
async def test_a_flood_under_a_low_fd_limit_starves_nobody(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    port = _free_port()
    (hermes_home / "config.yaml").write_text("platforms:\n  api_server:\n    header_timeout: 1.0\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(WORKTREE),
        "HERMES_HOME": str(hermes_home),
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
        "API_SERVER_ENABLED": "true",
        "API_SERVER_PORT": str(port),
        "API_SERVER_KEY": KEY,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hermes_tui.cli",
        "gateway",
        "run",
        env=env,
        cwd=str(WORKTREE),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_lower_fd_limit,
    )
    root = f"http://127.0.0.1:{port}"
    flood: list[asyncio.StreamWriter] = []
    stop = asyncio.Event()
    slow: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(20):
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    if await _health(root) == 200:
                        break
                await asyncio.sleep(0.1)
        slow = [asyncio.create_task(_slowloris(port, stop)) for _ in range(20)]
        flood = await _flood(port, 1100)
        failures, answered = [], 0
        deadline = time.monotonic() + 3
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5),
            connector=aiohttp.TCPConnector(force_close=True),
            headers={"Authorization": f"Bearer {KEY}"},
        ) as session:
            i = 0
            while time.monotonic() < deadline:
                i += 1
                more = await _flood(port, 50)  # the flood goes on meanwhile
                flood.extend(more)
                try:
                    async with session.get(f"{root}/health") as resp:
                        assert resp.status == 200
                    body = {"messages": [{"role": "user", "content": f"hi {i}"}]}
                    async with session.post(f"{root}/v1/chat/completions", json=body) as resp:
                        reply = json.loads(await resp.read())
                        assert resp.status == 200, reply
                        assert reply["choices"][0]["message"]["content"] == f"echo: hi {i}"
                    answered += 1
                except (aiohttp.ClientError, TimeoutError, AssertionError) as exc:
                    failures.append(repr(exc))
        assert answered >= 5 and failures == [], (answered, failures[:5])
        assert proc.returncode is None  # still running
        log = (hermes_home / "logs" / "gateway.log").read_text()
        lines = [line for line in log.splitlines() if "API server:" in line]
        assert len(lines) <= 40, len(lines)  # a few lines a second, not one per connection
        assert "similar events not logged" in log
    finally:
        stop.set()
        await asyncio.gather(*slow, return_exceptions=True)
        for writer in flood:
            writer.close()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
