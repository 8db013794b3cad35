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
from collections.abc import AsyncIterator, Callable
from typing import Any

from hermes_gateway.config import Config
from hermes_gateway.platforms.sms.adapter import WEBHOOK_PATH, SmsAdapter
from tests.conftest import make_config
from tests.fakes._aiohttp_fake import free_port
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.twilio_server import FakeTwilio
from tests.integration._platform_harness import PlatformHarness, platform_gateway

PUBLIC_URL = "https://hermes.example.test/webhooks/twilio"
ALICE = "+15551230001"
BOB = "+15551230002"
MALLORY = "+15559990000"
API_KEY = "sk-test-" + "k" * 24


class Harness(PlatformHarness[FakeTwilio, SmsAdapter]):
    platform = "sms"
    adapter_type = SmsAdapter

    async def text(self, sender: str, body: str, **kw: Any) -> tuple[int, str, str]:
        return await self.fake.text(sender, body, **kw)

    async def wait_answers(self, number: str, count: int, timeout: float = 5.0) -> list[str]:
        """Wait for ``count`` SMS to ``number`` and for every turn to finish; their bodies."""
        return await self.wait_listed(lambda: self.fake.bodies(number), count, timeout)


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
        async with platform_gateway(Harness, fake, config, configure) as harness:
            port = harness.runner.adapters["api"].port if on_api else harness.adapter.webhook_port  # type: ignore[attr-defined]
            fake.webhook_url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
            fake.public_url = PUBLIC_URL
            yield harness
