"""Closed-loop conversations for the chat-platform throughput benches (SMS, WhatsApp, Signal).

Each conversation writes, waits for its answer, and writes again until the deadline, so no
message is merged into another's turn and every message costs one full turn. A bench gives
one ``exchange(conversation, n)`` coroutine that sends message ``n`` and returns when the
answer arrived; this module starts the gateway, runs them (warm-up, loaded, one alone), times
them and prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from hermes_gateway.config import Config
from hermes_gateway.runner import GatewayRunner
from hermes_tui.assembly import build_gateway

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


class Arrivals(defaultdict[str, "asyncio.Queue[float]"]):
    """One queue per recipient that gets the time of each answer the fake saw the bot send."""

    def __init__(self) -> None:
        super().__init__(asyncio.Queue)

    def note(self, recipient: str) -> None:
        self[recipient].put_nowait(time.monotonic())


@dataclass
class Figures:
    """What one bench run measured."""

    total: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    alone: list[float] = field(default_factory=list)
    calls: int = 0
    """Requests the platform's fake took during the loaded run."""
    turns: int = 0
    """Model requests during the loaded run."""
    webhook_ms: list[float] = field(default_factory=list)
    """Webhook answer times of the loaded run, sorted (benches that time them)."""

    def webhook_line(self) -> str:
        ms = self.webhook_ms
        return (
            f"webhook answered   p50 {statistics.median(ms):.1f} ms"
            f"   max {ms[-1]:.1f} ms (stored before the 200)"
        )


def p95(sorted_ms: list[float]) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * 0.95))]


def report(title: str, got: Figures, extra: list[str] = ()) -> None:  # type: ignore[assignment]
    ms = sorted(x * 1000 for x in got.latencies)
    alone_ms = sorted(x * 1000 for x in got.alone)
    print(title)
    print(f"  messages answered   {got.total} in {got.elapsed:.2f} s")
    print(f"  throughput          {got.total / got.elapsed:.1f} messages/s (target >= 50)")
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


async def run_gateway(
    config: Config,
    platform: str,
    exchange: Exchange,
    conversations: int,
    seconds: float,
    *,
    calls: Callable[[], int],
    model_requests: Callable[[], int],
    ready: Callable[[GatewayRunner], None] | None = None,
    webhook_ms: list[float] | None = None,
) -> Figures:
    """Start the gateway for ``config``, wait for ``platform``, then a 1 s warm-up (sessions,
    pools), the loaded run of ``conversations`` for ``seconds`` and one conversation alone.

    ``ready`` runs once the platform is connected (to point a fake's webhook at it);
    ``webhook_ms``, filled by ``exchange``, is kept for the loaded run only.
    """
    gateway = build_gateway(config)
    runner = await gateway.start(local=False)
    figures = Figures()
    try:
        await wait_connected(runner, platform)
        if ready is not None:
            ready(runner)
        await measure(exchange, conversations, 1.0)  # warm-up: sessions, pools
        if webhook_ms is not None:
            webhook_ms.clear()
        before_calls, before_model = calls(), model_requests()
        figures.total, figures.elapsed, figures.latencies = await measure(
            exchange, conversations, seconds
        )
        figures.calls = calls() - before_calls
        figures.turns = model_requests() - before_model
        figures.webhook_ms = sorted(webhook_ms or [])
        _, _, figures.alone = await measure(exchange, 1, min(seconds, 2.0))
    finally:
        await gateway.stop()
    return figures


def closed_loop_main(
    run: Callable[[int, float], Coroutine[Any, Any, None]], doc: str | None, what: str
) -> None:
    """``--conversations`` (how many ``what``) and ``--seconds``, then ``run`` them."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50, help=f"{what} writing at once")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.conversations, args.seconds))
