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

import logging
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._closed_loop import Arrivals, closed_loop_main, report, run_gateway
from bench._config import bench_config
from hermes_gateway.platforms.sms.adapter import WEBHOOK_PATH
from tests.fakes._aiohttp_fake import free_port
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.twilio_server import FakeTwilio

PUBLIC_URL = "https://bench.example.test/webhooks/twilio"


class BenchTwilio(FakeTwilio):
    """The fake plus one queue per number that receives each SMS the bot sends."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = Arrivals()

    async def _send(self, request: web.Request) -> web.StreamResponse:
        response = await super()._send(request)
        if response.status == 201:
            self.arrived.note(self.sent[-1].to)
        return response


async def run(conversations: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    async with FakeOpenAI() as model, BenchTwilio() as fake:
        config = bench_config(model.base_url)
        sms = config.platforms.sms
        sms.account_sid, sms.token, sms.phone_number = fake.account_sid, fake.token, fake.number
        sms.webhook_url, sms.webhook_host, sms.webhook_port = PUBLIC_URL, "127.0.0.1", free_port()
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

        def ready(_runner: object) -> None:
            fake.webhook_url = f"http://127.0.0.1:{sms.webhook_port}{WEBHOOK_PATH}"
            fake.public_url = PUBLIC_URL

        got = await run_gateway(
            config,
            "sms",
            exchange,
            conversations,
            seconds,
            calls=lambda: len(fake.requests),
            model_requests=lambda: len(model.requests),
            ready=ready,
            webhook_ms=webhook_ms,
        )
    report(
        f"SMS (Twilio) end to end, {conversations} numbers, zero-latency model",
        got,
        [
            got.webhook_line(),
            f"REST calls/message  {got.calls / max(got.total, 1):.2f}   model turns {got.turns}",
        ],
    )


def main() -> None:
    closed_loop_main(run, __doc__, "phone numbers")


if __name__ == "__main__":
    main()
