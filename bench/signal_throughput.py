"""Signal messages per second end to end, across many contacts, with a zero-latency model.

The whole production path runs: the fake signal-cli-rest-api pushes each envelope over the
json-rpc receive websocket, the adapter normalises it, the runner stores it and runs the
agent against a scripted OpenAI-compatible server that answers at once, and the answer goes
out through the rate gate to ``POST /v2/send``. Each contact is a closed loop (see
``_closed_loop``). Signal documents no sending rate; its servers answer 429 (with a captcha
challenge) to accounts that send too much, so the general target applies.

Prints messages/s, round-trip latency under load, REST calls per message. Asserts nothing.
Run: ``python bench/signal_throughput.py [--conversations 50] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._closed_loop import measure, report, wait_connected
from bench._config import bench_config
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.signal_server import FakeSignal


class BenchSignal(FakeSignal):
    """The fake plus one queue per contact that receives each message the bot sends."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        response = await super()._send(request)
        if response.status == 201:
            self.arrived[self.sent[-1].recipient].put_nowait(time.monotonic())
        return response


async def run(conversations: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    async with FakeOpenAI() as model, BenchSignal() as fake:
        config = bench_config(model.base_url)
        sig = config.platforms.signal
        sig.http_url, sig.account = fake.url, fake.account
        contacts = [f"+1555{7000000 + i}" for i in range(conversations)]

        async def exchange(conv: int, n: int) -> None:
            contact = contacts[conv]
            await fake.user_sends(contact, f"message {n} from {contact}")
            await fake.arrived[contact].get()

        gateway = build_gateway(config)
        runner = await gateway.start(local=False)
        try:
            await wait_connected(runner, "signal")
            await measure(exchange, conversations, 1.0)  # warm-up
            before_rest, before_model = len(fake.sent), len(model.requests)
            total, elapsed, latencies = await measure(exchange, conversations, seconds)
            sends = len(fake.sent) - before_rest
            turns = len(model.requests) - before_model
            _, _, alone = await measure(exchange, 1, min(seconds, 2.0))
        finally:
            await gateway.stop()
    report(
        f"Signal (signal-cli-rest-api, json-rpc) end to end, {conversations} contacts,"
        " zero-latency model",
        total,
        elapsed,
        latencies,
        alone,
        [
            f"sends/message       {sends / max(total, 1):.2f}   model turns {turns}"
            f"   (one contact's messages are spaced {sig.rate_interval * 1000:.0f} ms apart)"
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.conversations, args.seconds))


if __name__ == "__main__":
    main()
