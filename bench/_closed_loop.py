"""Closed-loop conversations for the chat-platform throughput benches (SMS, WhatsApp, Signal).

Each conversation writes, waits for its answer, and writes again until the deadline, so no
message is merged into another's turn and every message costs one full turn. A bench gives
one ``exchange(conversation, n)`` coroutine that sends message ``n`` and returns when the
answer arrived; this module runs them, times them and prints the figures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

Exchange = Callable[[int, int], Awaitable[None]]
"""``exchange(conversation index, message number)``: send, return once answered."""


async def measure(
    exchange: Exchange, conversations: int, seconds: float
) -> tuple[int, float, list[float]]:
    """``(messages answered, elapsed seconds, round-trip latencies)`` over ``seconds``."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def one(conv: int) -> int:
        done = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            await asyncio.wait_for(exchange(conv, done), timeout=30)
            latencies.append(time.monotonic() - started)
            done += 1
        return done

    started = time.monotonic()
    total = sum(await asyncio.gather(*(one(c) for c in range(conversations))))
    return total, time.monotonic() - started, latencies


def p95(sorted_ms: list[float]) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * 0.95))]


def report(
    title: str,
    total: int,
    elapsed: float,
    latencies: list[float],
    alone: list[float],
    extra: list[str] = (),  # type: ignore[assignment]
) -> None:
    ms = sorted(x * 1000 for x in latencies)
    alone_ms = sorted(x * 1000 for x in alone)
    print(title)
    print(f"  messages answered   {total} in {elapsed:.2f} s")
    print(f"  throughput          {total / elapsed:.1f} messages/s (target >= 50)")
    print(
        f"  round trip (loaded) p50 {statistics.median(ms):.1f} ms   p95 {p95(ms):.1f} ms"
        f"   max {ms[-1]:.1f} ms"
    )
    for line in extra:
        print(f"  {line}")
    print(
        f"  one conversation    p50 {statistics.median(alone_ms):.1f} ms"
        f"   p95 {p95(alone_ms):.1f} ms   ({len(alone_ms)} round trips)"
    )


async def wait_connected(runner: Any, platform: str, timeout: float = 10.0) -> None:
    """Return once ``platform`` reports connected; exit with its reason if it failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = runner.platform_state.get(platform)
        if state is not None and state.state == "connected":
            return
        if state is not None and state.state == "failed":
            raise SystemExit(f"{platform} failed: {state.detail}")
        await asyncio.sleep(0.01)
    raise SystemExit(f"{platform} did not connect")
