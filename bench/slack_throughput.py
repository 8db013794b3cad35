"""Slack messages per second end to end, across many DMs, with a zero-latency model.

The whole production path runs: the fake Slack pushes ``events_api`` envelopes over Socket
Mode to the real slack_sdk client, Bolt runs the adapter's listener (acknowledging after
the runner stored the message), the runner runs the agent against a scripted
OpenAI-compatible server that answers at once, and the answer goes back through the rate
gate and slack_sdk's Web API client (``chat.postMessage``) to the fake. Each chat is a closed
loop (a user waits for the answer before writing again), so every message costs one turn.

Two runs: with the production pacing (``rate_interval`` 1 s per channel, Slack's "about one
message per second per channel"), which caps a closed loop at one message per chat per
second, and with pacing off, which shows what the pipeline itself can do. Prints
messages/s, the loaded round trip (p50/p95/max) and Web API calls per message. Asserts
nothing. Run: ``python bench/slack_throughput.py [--chats 50] [--seconds 5]``
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
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack

USER = "U0BENCH"


class BenchSlack(FakeSlack):
    """The fake plus a queue per channel that receives each bot message as it is posted."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: dict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)

    async def _m_chat_postMessage(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        response = await super()._m_chat_postMessage(request, p)
        self.posted[str(p.get("channel"))].put_nowait(time.monotonic())
        return response


async def _conversation(
    fake: BenchSlack, channel: str, deadline: float, latencies: list[float]
) -> int:
    done = 0
    answers = fake.posted[channel]
    while time.monotonic() < deadline:
        started = time.monotonic()
        await fake.inject_message(USER, channel, f"message {done} in {channel}")
        answered = await asyncio.wait_for(answers.get(), timeout=30)
        latencies.append(answered - started)
        done += 1
    return done


async def _measure(fake: BenchSlack, ids: list[str], seconds: float, lat: list[float]) -> int:
    deadline = time.monotonic() + seconds
    counts = await asyncio.gather(*(_conversation(fake, c, deadline, lat) for c in ids))
    return sum(counts)


async def _wait_connected(runner: Any) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = runner.platform_state.get("slack")
        if state is not None and state.state == "connected":
            return
        if state is not None and state.state == "failed":
            raise SystemExit(f"Slack failed: {state.detail}")
        await asyncio.sleep(0.01)
    raise SystemExit("Slack did not connect")


async def run(chats: int, seconds: float, rate_interval: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        async with FakeOpenAI() as model, BenchSlack() as fake:
            fake.users[USER] = "bench-user"
            ids = [f"D{i:08d}" for i in range(chats)]
            env = {
                "HERMES_HOME": str(home),
                "OPENAI_BASE_URL": model.base_url,
                "OPENAI_API_KEY": "test-key",
                "HERMES_MODEL": "fake-model",
                "SLACK_BOT_TOKEN": fake.bot_token,
                "SLACK_APP_TOKEN": fake.app_token,
                "SLACK_API_BASE": fake.api_base,
                "SLACK_ALLOWED_USERS": USER,
            }
            config = load_config(HermesPaths(home), env)
            config.agent.cwd = str(home)
            config.platforms.slack.rate_interval = rate_interval
            gateway = build_gateway(config)
            runner = await gateway.start(local=False)
            try:
                await _wait_connected(runner)
                await _measure(fake, ids, 1.0, [])  # warm-up: sessions, pools, name cache
                before_api, before_model = len(fake.calls), len(model.requests)
                latencies: list[float] = []
                started = time.monotonic()
                total = await _measure(fake, ids, seconds, latencies)
                elapsed = time.monotonic() - started
                api = len(fake.calls) - before_api
                turns = len(model.requests) - before_model
            finally:
                await gateway.stop()
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"Slack end to end, {chats} chats, zero-latency model, pacing {rate_interval:g} s/chat")
    print(f"  messages answered   {total} in {elapsed:.2f} s")
    print(f"  throughput          {total / elapsed:.1f} messages/s (target >= 50)")
    print(
        f"  round trip (loaded) p50 {statistics.median(ms):.1f} ms   p95 {p95:.1f} ms"
        f"   max {ms[-1]:.1f} ms"
    )
    print(f"  Web API calls/msg   {api / max(total, 1):.2f}   model turns {turns}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.chats, args.seconds, 1.0))
    asyncio.run(run(args.chats, args.seconds, 0.0))


if __name__ == "__main__":
    main()
