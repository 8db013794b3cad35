"""A gateway with the SMS adapter against the fake Twilio, and helpers to drive it.

:func:`sms_gateway` runs the real :class:`~hermes_gateway.gateway.Gateway`, built from config
as a Hermes user writes it (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER,
SMS_WEBHOOK_URL, SMS_ALLOWED_USERS), with the scripted model and
:class:`~tests.fakes.twilio_server.FakeTwilio`. The webhook listens on 127.0.0.1 (its own
port, or the API server's with ``on_api=True``); the fake signs for a public URL as behind a
tunnel and posts to the local one.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.sms.adapter import WEBHOOK_PATH, SmsAdapter
from hermes_gateway.runner import GatewayRunner
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.twilio_server import FakeTwilio
from tests.helpers import Recorder

PUBLIC_URL = "https://hermes.example.test/webhooks/twilio"
ALICE = "+15551230001"
BOB = "+15551230002"
MALLORY = "+15559990000"
API_KEY = "sk-test-" + "k" * 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Harness:
    fake: FakeTwilio
    gateway: Gateway
    runner: GatewayRunner
    adapter: SmsAdapter
    recorder: Recorder

    async def text(self, sender: str, body: str, **kw: Any) -> tuple[int, str, str]:
        return await self.fake.text(sender, body, **kw)

    async def wait_answers(self, number: str, count: int, timeout: float = 5.0) -> list[str]:
        """Wait for ``count`` SMS to ``number`` and for every turn to finish; their bodies."""
        await self.fake.wait_for(lambda: len(self.fake.to(number)) >= count, timeout)
        await self.runner.wait_idle(timeout)
        return self.fake.bodies(number)

    def states(self) -> list[tuple[str, str]]:
        return [
            (e.state, e.detail) for e in self.recorder.of(ev.PlatformStatus) if e.platform == "sms"
        ]

    async def wait_state(self, *states: str, timeout: float = 5.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] in states, timeout
        )


def sms_config(home: Any, openai: FakeOpenAI, fake: FakeTwilio, **env: str) -> Config:
    env = {
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.token,
        "TWILIO_PHONE_NUMBER": fake.number,
        "SMS_WEBHOOK_URL": PUBLIC_URL,
        "SMS_WEBHOOK_HOST": "127.0.0.1",
        "SMS_ALLOWED_USERS": ALICE,
        **env,
    }
    config = make_config(home, openai, **{k: v for k, v in env.items() if v is not None})
    config.platforms.sms.api_base = fake.url
    return config


@contextlib.asynccontextmanager
async def sms_gateway(
    home: Any,
    openai: FakeOpenAI,
    *,
    fake: FakeTwilio | None = None,
    on_api: bool = False,
    configure: Callable[[Config], None] | None = None,
    **env: str,
) -> AsyncIterator[Harness]:
    """The whole gateway, SMS enabled by config, against a fake Twilio (fresh or given)."""
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeTwilio())
        if on_api:
            env = {"API_SERVER_KEY": API_KEY, "API_SERVER_PORT": "0", **env}
        else:
            env.setdefault("SMS_WEBHOOK_PORT", str(free_port()))
        config = sms_config(home, openai, fake, **env)
        if configure is not None:
            configure(config)
        gateway = build_gateway(config)
        recorder = Recorder(gateway.bus)
        runner = await gateway.start(local=False)
        try:
            adapter = runner.adapters["sms"]
            assert isinstance(adapter, SmsAdapter)
            harness = Harness(fake, gateway, runner, adapter, recorder)
            await harness.wait_state("connected", "failed")
            port = runner.adapters["api"].port if on_api else adapter.webhook_port  # type: ignore[attr-defined]
            fake.webhook_url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
            fake.public_url = PUBLIC_URL
            yield harness
        finally:
            await gateway.stop()
            recorder.close()
