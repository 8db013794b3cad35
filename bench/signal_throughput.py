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

import logging
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._closed_loop import Arrivals, closed_loop_main, report, run_gateway
from bench._config import bench_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.signal_server import FakeSignal


class BenchSignal(FakeSignal):
    """The fake plus one queue per contact that receives each message the bot sends."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = Arrivals()

    async def _send(self, request: web.Request) -> web.StreamResponse:
        response = await super()._send(request)
        if response.status == 201:
            self.arrived.note(self.sent[-1].recipient)
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

        got = await run_gateway(
            config,
            "signal",
            exchange,
            conversations,
            seconds,
            calls=lambda: len(fake.sent),
            model_requests=lambda: len(model.requests),
        )
    report(
        f"Signal (signal-cli-rest-api, json-rpc) end to end, {conversations} contacts,"
        " zero-latency model",
        got,
        [
            f"sends/message       {got.calls / max(got.total, 1):.2f}   model turns {got.turns}"
            f"   (one contact's messages are spaced {sig.rate_interval * 1000:.0f} ms apart)"
        ],
    )


def main() -> None:
    closed_loop_main(run, __doc__, "contacts")


if __name__ == "__main__":
    main()
