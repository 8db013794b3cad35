"""Mattermost messages per second end to end, across many channels, with a zero-latency model.

The whole production path runs: the fake Mattermost sends ``posted`` events over the real
websocket, the adapter normalises them, the runner stores each and runs the agent against a
scripted OpenAI-compatible server that answers at once, and the answer goes back through the
rate gate and the REST client (``POST /api/v4/posts``) to the fake. Each channel is a closed
loop (a user waits for the answer before writing again), so no message is merged into
another's turn and every message costs one full turn.

Prints messages/s, the round-trip latency under that load (p50/p95/max), REST calls per
message, and the round trip of one conversation alone. It asserts nothing.
Run: ``python bench/mattermost_throughput.py [--channels 50] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hermes_gateway.config import load_config
from hermes_gateway.paths import HermesPaths
from hermes_gateway.platforms.mattermost.adapter import PER_CHANNEL_INTERVAL
from hermes_tui.assembly import build_gateway
from tests.fakes.mattermost_server import FakeMattermost
from tests.fakes.openai_server import FakeOpenAI


class BenchMattermost(FakeMattermost):
    """The fake plus a queue per channel that receives each bot post as it is created."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: dict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)

    async def _create_post(self, request: web.Request, parts: list[str]) -> web.Response:
        response = await super()._create_post(request, parts)
        if response.status == 201:
            channel = self.posts[list(self.posts)[-1]].channel_id
            self.posted[channel].put_nowait(time.monotonic())
        return response


async def _conversation(
    fake: BenchMattermost, user: str, channel: str, deadline: float, latencies: list[float]
) -> int:
    """One user in one channel: write, wait for the answer, repeat until the deadline."""
    done = 0
    answers = fake.posted[channel]
    while time.monotonic() < deadline:
        started = time.monotonic()
        await fake.post_as(user, channel, f"@hermes message {done} in {channel}")
        answered = await asyncio.wait_for(answers.get(), timeout=30)
        latencies.append(answered - started)
        done += 1
    return done


async def _measure(
    fake: BenchMattermost, user: str, ids: list[str], seconds: float, latencies: list[float]
) -> int:
    deadline = time.monotonic() + seconds
    counts = await asyncio.gather(*(_conversation(fake, user, c, deadline, latencies) for c in ids))
    return sum(counts)


async def _wait_connected(runner: Any) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = runner.platform_state.get("mattermost")
        if state is not None and state.state == "connected":
            return
        if state is not None and state.state == "failed":
            raise SystemExit(f"Mattermost failed: {state.detail}")
        await asyncio.sleep(0.01)
    raise SystemExit("Mattermost did not connect")


async def run(channels: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        async with FakeOpenAI() as model, BenchMattermost() as fake:
            user = fake.add_user("bench-user")
            ids = [fake.add_channel(f"bench-{i}", [user]) for i in range(channels)]
            env = {
                "HERMES_HOME": str(home),
                "OPENAI_BASE_URL": model.base_url,
                "OPENAI_API_KEY": "test-key",
                "HERMES_MODEL": "fake-model",
                "MATTERMOST_URL": fake.url,
                "MATTERMOST_TOKEN": fake.token,
                "MATTERMOST_ALLOWED_USERS": user,
            }
            config = load_config(HermesPaths(home), env)
            config.agent.cwd = str(home)
            gateway = build_gateway(config)
            runner = await gateway.start(local=False)
            try:
                await _wait_connected(runner)
                await _measure(fake, user, ids, 1.0, [])  # warm-up: sessions, pools, caches
                before_rest, before_model = len(fake.requests), len(model.requests)
                latencies: list[float] = []
                started = time.monotonic()
                total = await _measure(fake, user, ids, seconds, latencies)
                elapsed = time.monotonic() - started
                rest = len(fake.requests) - before_rest
                turns = len(model.requests) - before_model
                alone: list[float] = []
                await _measure(fake, user, ids[:1], min(seconds, 2.0), alone)
            finally:
                await gateway.stop()
    ms = sorted(x * 1000 for x in latencies)
    alone_ms = sorted(x * 1000 for x in alone)
    print(f"Mattermost end to end, {channels} channels, zero-latency model")
    print(f"  messages answered   {total} in {elapsed:.2f} s")
    print(f"  throughput          {total / elapsed:.1f} messages/s (target >= 50)")
    print(
        f"  round trip (loaded) p50 {statistics.median(ms):.1f} ms   p95 {_p95(ms):.1f} ms"
        f"   max {ms[-1]:.1f} ms"
    )
    print(f"  REST calls/message  {rest / max(total, 1):.2f}   model turns {turns}")
    print(
        f"  one channel alone   p50 {statistics.median(alone_ms):.1f} ms"
        f"   p95 {_p95(alone_ms):.1f} ms   ({len(alone_ms)} round trips; the rate gate"
        f" spaces one channel's writes {PER_CHANNEL_INTERVAL * 1000:.0f} ms apart)"
    )


def _p95(sorted_ms: list[float]) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.channels, args.seconds))


if __name__ == "__main__":
    main()
