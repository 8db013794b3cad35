"""IRC messages per second end to end across many conversations, on a real ngircd.

The whole production path runs: users on a real IRC server (ngircd, started here on
127.0.0.1) write private messages to the bot, the adapter parses them, the runner stores each
and runs the agent against a scripted OpenAI-compatible server that answers at once, and the
answer goes back line by line through the flood bucket. Each user is a closed loop (writes,
waits for the answer, writes again).

IRC has a lower documented limit than the 50 msg/s target: a server reads each client's lines
at its own pace and disconnects a client that floods it (ngircd reads about three lines a
second per client, the ratbox/solanum family about five after a burst). Every answer is one
line from the bot's one connection, so the bot's send pace caps the throughput. The run is
repeated with the flood bucket off to show what the server alone allows (a real network
would kill such a bot with "Excess Flood"; ngircd only slows it down).

Prints messages/s, latency, and the seconds lines waited in the bucket. Asserts nothing.
Run: ``python bench/irc_throughput.py [--conversations 50] [--seconds 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._config import bench_config
from hermes_gateway.platforms.irc.adapter import IrcAdapter
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.irc_harness import BOT, IrcUser
from tests.integration.irc_server import NGIRCD, Ngircd


async def _conversation(user: IrcUser, deadline: float, latencies: list[float]) -> int:
    done = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        await user.say(BOT, f"message {done}")
        await user.wait_bot_lines(done + 1, timeout=120)
        latencies.append(time.monotonic() - started)
        done += 1
    return done


async def _wait_connected(runner: Any) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = runner.platform_state.get("irc")
        if state is not None and state.state == "connected":
            return
        if state is not None and state.state == "failed":
            raise SystemExit(f"IRC failed: {state.detail}")
        await asyncio.sleep(0.01)
    raise SystemExit("IRC did not connect")


async def _one_run(
    model: FakeOpenAI, server: Ngircd, users: list[IrcUser], seconds: float, rate: float
) -> dict[str, float]:
    config = bench_config(
        model.base_url,
        IRC_SERVER="127.0.0.1",
        IRC_PORT=str(server.port),
        IRC_USE_TLS="false",
        IRC_NICKNAME=BOT,
        IRC_ALLOW_ALL_USERS="true",
    )
    config.platforms.irc.flood_rate = rate
    gateway = build_gateway(config)
    runner = await gateway.start(local=False)
    try:
        await _wait_connected(runner)
        adapter = runner.adapters["irc"]
        assert isinstance(adapter, IrcAdapter)
        for user in users:
            user.lines.clear()
        latencies: list[float] = []
        started = time.monotonic()
        deadline = started + seconds
        counts = await asyncio.gather(*(_conversation(u, deadline, latencies) for u in users))
        elapsed = time.monotonic() - started
        waited = adapter.bucket.waited
    finally:
        await gateway.stop()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "total": sum(counts),
        "elapsed": elapsed,
        "p50": statistics.median(ms),
        "p95": ms[min(len(ms) - 1, int(len(ms) * 0.95))],
        "waited": waited,
    }


async def run(conversations: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    if not NGIRCD:
        raise SystemExit("ngircd is not installed (apt-get install ngircd)")
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeOpenAI() as model, Ngircd(Path(tmp) / "irc") as server:
            users = [
                await IrcUser(f"bench{i}", server.port).connect() for i in range(conversations)
            ]
            try:
                results = []
                for label, rate in (
                    ("flood bucket 5 + 2 lines/s (default)", 2.0),
                    ("bucket off", 0.0),
                ):
                    results.append((label, await _one_run(model, server, users, seconds, rate)))
            finally:
                for user in users:
                    await user.close()
    print(f"IRC end to end on ngircd, {conversations} conversations, zero-latency model")
    for label, r in results:
        print(f"  {label}")
        print(
            f"    {r['total']:.0f} answered in {r['elapsed']:.1f} s = "
            f"{r['total'] / r['elapsed']:.1f} messages/s; round trip p50 {r['p50']:.0f} ms,"
            f" p95 {r['p95']:.0f} ms; lines waited {r['waited']:.1f} s in the bucket"
        )
    print(
        "  what caps it: one line per answer over one connection; the server's read pace"
        " (ngircd ~3 lines/s per client) and the flood bucket under it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(run(args.conversations, args.seconds))


if __name__ == "__main__":
    main()
