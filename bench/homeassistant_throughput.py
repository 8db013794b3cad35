"""Home Assistant messages per second end to end across many conversations.

The whole production path runs: the fake HA websocket API fires ``hermes_conversation``
events (each from its own HA user) over a real socket, the adapter turns them into messages,
the runner stores each and runs the agent against a scripted OpenAI-compatible server that
answers at once, and the answer goes back as a ``call_service notify.<service>`` command on
the same websocket. Each user is a closed loop (asks, waits for the notification, asks again).

Prints messages/s, the round-trip latency under that load (p50/p95/max) and one conversation
alone. Asserts nothing. Run: ``python bench/homeassistant_throughput.py [--conversations 50]
[--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._config import bench_config
from hermes_tui.assembly import build_gateway
from tests.fakes.homeassistant_server import FakeHomeAssistant, _Client
from tests.fakes.openai_server import FakeOpenAI

EVENT = "hermes_conversation"


class BenchHomeAssistant(FakeHomeAssistant):
    """The fake plus a queue per notify service that receives each call as it is made."""

    def __init__(self, services: tuple[str, ...]) -> None:
        super().__init__(services=services)
        self.called: dict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)

    async def _command(self, client: _Client, command: dict[str, Any]) -> None:
        await super()._command(client, command)
        if command.get("type") == "call_service":
            self.called[str(command.get("service"))].put_nowait(time.monotonic())


def _user(i: int) -> str:
    return f"{i:032x}"


async def _conversation(
    fake: BenchHomeAssistant, i: int, deadline: float, latencies: list[float]
) -> int:
    done = 0
    answers = fake.called[f"bench_{i}"]
    while time.monotonic() < deadline:
        started = time.monotonic()
        data = {"text": f"message {done}", "notify": f"bench_{i}"}
        await fake.fire(EVENT, data, user_id=_user(i))
        answered = await asyncio.wait_for(answers.get(), timeout=30)
        latencies.append(answered - started)
        done += 1
    return done


async def _measure(
    fake: BenchHomeAssistant, users: range, seconds: float, latencies: list[float]
) -> int:
    deadline = time.monotonic() + seconds
    counts = await asyncio.gather(*(_conversation(fake, i, deadline, latencies) for i in users))
    return sum(counts)


async def _wait_connected(runner: Any) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = runner.platform_state.get("homeassistant")
        if state is not None and state.state == "connected":
            return
        if state is not None and state.state == "failed":
            raise SystemExit(f"Home Assistant failed: {state.detail}")
        await asyncio.sleep(0.01)
    raise SystemExit("Home Assistant did not connect")


async def run(conversations: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    services = tuple(f"notify.bench_{i}" for i in range(conversations))
    async with FakeOpenAI() as model, BenchHomeAssistant(services) as fake:
        config = bench_config(
            model.base_url,
            HASS_URL=fake.url,
            HASS_TOKEN=fake.token,
            HASS_ALLOW_ALL_USERS="true",
        )
        gateway = build_gateway(config)
        runner = await gateway.start(local=False)
        try:
            await _wait_connected(runner)
            await _measure(fake, range(conversations), 1.0, [])  # warm-up
            latencies: list[float] = []
            started = time.monotonic()
            total = await _measure(fake, range(conversations), seconds, latencies)
            elapsed = time.monotonic() - started
            alone: list[float] = []
            await _measure(fake, range(1), min(seconds, 2.0), alone)
        finally:
            await gateway.stop()
    ms = sorted(x * 1000 for x in latencies)
    alone_ms = sorted(x * 1000 for x in alone)
    print(f"Home Assistant end to end, {conversations} conversations, zero-latency model")
    print(f"  messages answered   {total} in {elapsed:.2f} s")
    print(f"  throughput          {total / elapsed:.1f} messages/s (target >= 50)")
    print(
        f"  round trip (loaded) p50 {statistics.median(ms):.1f} ms   p95 {_p95(ms):.1f} ms"
        f"   max {ms[-1]:.1f} ms"
    )
    print(
        f"  one conversation    p50 {statistics.median(alone_ms):.1f} ms"
        f"   p95 {_p95(alone_ms):.1f} ms   ({len(alone_ms)} round trips)"
    )


def _p95(sorted_ms: list[float]) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.conversations, args.seconds))


if __name__ == "__main__":
    main()
