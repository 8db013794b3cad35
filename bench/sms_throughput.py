"""SMS (Twilio) messages per second end to end, across many phone numbers, zero-latency model.

The whole production path runs: the fake Twilio posts each inbound SMS to the gateway's
webhook as Twilio does (form-encoded, ``X-Twilio-Signature`` checked), the adapter stores it
through the runner before answering 200 with empty TwiML, the agent answers from a scripted
OpenAI-compatible server at once, and the answer goes out through the rate gate and
``POST /Accounts/{sid}/Messages.json`` to the fake. Each number is a closed loop (see
``_closed_loop``). Twilio documents no per-recipient limit for the REST API (it queues what a
sender number cannot send at once), so the target is the general one.

Prints messages/s, round-trip latency under load (p50/p95/max), webhook answer time, REST
calls per message. Asserts nothing.
Run: ``python bench/sms_throughput.py [--conversations 50] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._closed_loop import measure, report, wait_connected
from bench._config import bench_config
from hermes_gateway.platforms.sms.adapter import WEBHOOK_PATH
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.twilio_server import FakeTwilio

PUBLIC_URL = "https://bench.example.test/webhooks/twilio"


class BenchTwilio(FakeTwilio):
    """The fake plus one queue per number that receives each SMS the bot sends."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        response = await super()._send(request)
        if response.status == 201:
            self.arrived[self.sent[-1].to].put_nowait(time.monotonic())
        return response


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(conversations: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    async with FakeOpenAI() as model, BenchTwilio() as fake:
        config = bench_config(model.base_url)
        sms = config.platforms.sms
        sms.account_sid, sms.token, sms.phone_number = fake.account_sid, fake.token, fake.number
        sms.webhook_url, sms.webhook_host, sms.webhook_port = PUBLIC_URL, "127.0.0.1", _free_port()
        sms.api_base = fake.url
        numbers = [f"+1555{7000000 + i}" for i in range(conversations)]
        webhook_ms: list[float] = []

        async def exchange(conv: int, n: int) -> None:
            number = numbers[conv]
            started = time.monotonic()
            status, _, _ = await fake.text(number, f"message {n} from {number}")
            webhook_ms.append((time.monotonic() - started) * 1000)
            if status != 200:
                raise SystemExit(f"webhook answered {status}")
            await fake.arrived[number].get()

        gateway = build_gateway(config)
        runner = await gateway.start(local=False)
        try:
            await wait_connected(runner, "sms")
            fake.webhook_url = f"http://127.0.0.1:{sms.webhook_port}{WEBHOOK_PATH}"
            fake.public_url = PUBLIC_URL
            await measure(exchange, conversations, 1.0)  # warm-up: sessions, pools
            webhook_ms.clear()
            before_rest, before_model = len(fake.requests), len(model.requests)
            total, elapsed, latencies = await measure(exchange, conversations, seconds)
            rest = len(fake.requests) - before_rest
            turns = len(model.requests) - before_model
            loaded_webhook = sorted(webhook_ms)
            _, _, alone = await measure(exchange, 1, min(seconds, 2.0))
        finally:
            await gateway.stop()
    report(
        f"SMS (Twilio) end to end, {conversations} numbers, zero-latency model",
        total,
        elapsed,
        latencies,
        alone,
        [
            f"webhook answered   p50 {statistics.median(loaded_webhook):.1f} ms"
            f"   max {loaded_webhook[-1]:.1f} ms (stored before the 200)",
            f"REST calls/message  {rest / max(total, 1):.2f}   model turns {turns}",
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
