"""Discord messages per second end to end, across many channels, with a zero-latency model.

The whole production path runs: the fake Discord's gateway delivers MESSAGE_CREATE to the
real discord.py client, the adapter normalises it, the runner stores it and runs the agent
against a scripted OpenAI-compatible server that answers at once, and the answer goes back
through the rate gate and discord.py's REST client to the fake. Each channel is a closed
loop (a user waits for the answer before writing again), so no message is merged into
another's turn and every message costs one full turn.

Prints messages/s, the round-trip latency under that load (p50/p95/max), REST calls per
message, and the round trip of one conversation alone (no queueing). It asserts nothing. Run: ``python bench/discord_throughput.py [--channels 50] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hermes_gateway.config import load_config
from hermes_gateway.paths import HermesPaths
from hermes_gateway.platforms.discord.adapter import PER_CHANNEL_INTERVAL
from hermes_tui.assembly import build_gateway
from tests.fakes.discord_server import FakeDiscord, patch_discord
from tests.fakes.openai_server import FakeOpenAI

GUILD = 7_000_000
FIRST_CHANNEL = 7_100_000
USER = 4242


class BenchDiscord(FakeDiscord):
    """The fake plus a queue per channel that receives each bot message as it is posted."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: dict[int, asyncio.Queue[float]] = defaultdict(asyncio.Queue)

    async def _post_message(self, request: web.Request, match: re.Match[str]) -> web.Response:
        response = await super()._post_message(request, match)
        if response.status == 200:
            self.posted[int(match[1])].put_nowait(time.monotonic())
        return response


async def _conversation(
    fake: BenchDiscord, channel: int, deadline: float, latencies: list[float]
) -> int:
    """One user in one channel: write, wait for the answer, repeat until the deadline."""
    done = 0
    answers = fake.posted[channel]
    while time.monotonic() < deadline:
        started = time.monotonic()
        await fake.inject_message(
            channel,
            f"message {done} in {channel}",
            author_id=USER,
            guild_id=GUILD,
            mentions_bot=True,
        )
        answered = await asyncio.wait_for(answers.get(), timeout=30)
        latencies.append(answered - started)
        done += 1
    return done


async def run(channels: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        async with FakeOpenAI() as model, BenchDiscord() as fake:
            ids = [FIRST_CHANNEL + i for i in range(channels)]
            fake.add_user(USER, "bench-user")
            fake.add_guild(GUILD, "Bench", ids, member_ids=[USER])
            env = {
                "HERMES_HOME": str(home),
                "OPENAI_BASE_URL": model.base_url,
                "OPENAI_API_KEY": "test-key",
                "HERMES_MODEL": "fake-model",
                "DISCORD_BOT_TOKEN": fake.token,
                "DISCORD_API_BASE": fake.rest_base,
                "DISCORD_GATEWAY_URL": fake.gateway_url,
                "DISCORD_ALLOWED_USERS": str(USER),
            }
            config = load_config(HermesPaths(home), env)
            config.agent.cwd = str(home)
            config.platforms.discord.guild_ready_timeout = 0.05
            config.platforms.discord.sync_commands = False
            with patch_discord(fake):
                gateway = build_gateway(config)
                runner = await gateway.start(local=False)
                try:
                    await _wait_connected(runner)
                    # Warm-up: sessions created, connections pooled, caches filled.
                    await _measure(fake, ids, 1.0, [])
                    before_rest, before_model = len(fake.requests), len(model.requests)
                    latencies: list[float] = []
                    started = time.monotonic()
                    total = await _measure(fake, ids, seconds, latencies)
                    elapsed = time.monotonic() - started
                    rest = len(fake.requests) - before_rest
                    turns = len(model.requests) - before_model
                    # One conversation alone: the pipeline's own round trip, no queueing.
                    alone: list[float] = []
                    await _measure(fake, ids[:1], min(seconds, 2.0), alone)
                finally:
                    await gateway.stop()
    _print(channels, total, elapsed, latencies, rest, turns)
    alone_ms = sorted(x * 1000 for x in alone)
    print(
        f"  one channel alone   p50 {statistics.median(alone_ms):.1f} ms"
        f"   p95 {_p95(alone_ms):.1f} ms   ({len(alone_ms)} round trips; the rate gate"
        f" spaces one channel's writes {PER_CHANNEL_INTERVAL * 1000:.0f} ms apart)"
    )


async def _wait_connected(runner: object) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = runner.platform_state.get("discord")  # type: ignore[attr-defined]
        if state is not None and state.state == "connected":
            return
        if state is not None and state.state == "failed":
            raise SystemExit(f"Discord failed: {state.detail}")
        await asyncio.sleep(0.01)
    raise SystemExit("Discord did not connect")


async def _measure(
    fake: BenchDiscord, ids: list[int], seconds: float, latencies: list[float]
) -> int:
    deadline = time.monotonic() + seconds
    counts = await asyncio.gather(*(_conversation(fake, c, deadline, latencies) for c in ids))
    return sum(counts)


def _p95(sorted_ms: list[float]) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * 0.95))]


def _print(
    channels: int, total: int, elapsed: float, latencies: list[float], rest: int, turns: int
) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p95 = _p95(ms)
    print(f"Discord end to end, {channels} channels, zero-latency model")
    print(f"  messages answered   {total} in {elapsed:.2f} s")
    print(f"  throughput          {total / elapsed:.1f} messages/s (target >= 50)")
    print(f"  round trip (loaded) p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {ms[-1]:.1f} ms")
    print(f"  REST calls/message  {rest / max(total, 1):.2f}   model turns {turns}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.channels, args.seconds))


if __name__ == "__main__":
    main()
