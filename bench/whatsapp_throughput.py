"""WhatsApp (Cloud API) messages per second end to end, across many users, zero-latency model.

The whole production path runs: the fake Cloud API posts each user message to the gateway's
webhook as Meta does (JSON notification, ``X-Hub-Signature-256`` checked), the adapter stores
it through the runner before answering 200, the read receipt and typing indicator go out, the
agent answers from a scripted OpenAI-compatible server at once, and the answer goes through
the rate gate to ``POST /{phone_number_id}/messages``. Each user is a closed loop (see
``_closed_loop``). Meta's documented throughput is 80 messages/s per business number by
default (up to 1,000 on request), above the general target of 50.

Prints messages/s, round-trip latency under load, webhook answer time, Graph calls per
message. Asserts nothing.
Run: ``python bench/whatsapp_throughput.py [--conversations 50] [--seconds 5]``
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
from tests.fakes._aiohttp_fake import free_port
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.whatsapp_server import VERSION, FakeWhatsApp


class BenchWhatsApp(FakeWhatsApp):
    """The fake plus one queue per user that receives each text the bot sends."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = Arrivals()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        before = len(self.sent)
        response = await super()._messages(request)
        if len(self.sent) > before:
            self.arrived.note(self.sent[-1].to)
        return response


async def run(conversations: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    async with FakeOpenAI() as model, BenchWhatsApp() as fake:
        config = bench_config(model.base_url)
        wa = config.platforms.whatsapp
        wa.phone_number_id, wa.token = fake.phone_number_id, fake.token
        wa.app_secret, wa.verify_token = fake.app_secret, fake.verify_token
        wa.webhook_host, wa.webhook_port = "127.0.0.1", free_port()
        wa.graph_base, wa.api_version = fake.base, VERSION
        users = [str(15557000000 + i) for i in range(conversations)]
        webhook_ms: list[float] = []

        async def exchange(conv: int, n: int) -> None:
            user = users[conv]
            started = time.monotonic()
            status, _ = await fake.user_sends(user, f"message {n} from {user}")
            webhook_ms.append((time.monotonic() - started) * 1000)
            if status != 200:
                raise SystemExit(f"webhook answered {status}")
            await fake.arrived[user].get()

        def ready(_runner: object) -> None:
            fake.webhook_url = f"http://127.0.0.1:{wa.webhook_port}{wa.webhook_path}"

        got = await run_gateway(
            config,
            "whatsapp",
            exchange,
            conversations,
            seconds,
            calls=lambda: len(fake.requests),
            model_requests=lambda: len(model.requests),
            ready=ready,
            webhook_ms=webhook_ms,
        )
    report(
        f"WhatsApp Cloud API end to end, {conversations} users, zero-latency model",
        got,
        [
            got.webhook_line(),
            f"Graph calls/message {got.calls / max(got.total, 1):.2f} (answer + read/typing)"
            f"   model turns {got.turns}",
        ],
    )


def main() -> None:
    closed_loop_main(run, __doc__, "users")


if __name__ == "__main__":
    main()
