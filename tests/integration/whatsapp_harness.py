"""A gateway with the WhatsApp adapter against the fake Cloud API, and helpers to drive it.

:func:`whatsapp_gateway` runs the real gateway built from config as a Hermes user writes it
(WHATSAPP_CLOUD_PHONE_NUMBER_ID, _ACCESS_TOKEN, _APP_SECRET, _VERIFY_TOKEN, _ALLOWED_USERS)
with the scripted model and :class:`~tests.fakes.whatsapp_server.FakeWhatsApp`; the webhook
listens on 127.0.0.1 (its own port, or the API server's with ``on_api=True``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from hermes_gateway.config import Config
from hermes_gateway.platforms.whatsapp.adapter import WhatsAppAdapter
from tests.conftest import make_config
from tests.fakes._aiohttp_fake import free_port
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.whatsapp_server import VERSION, FakeWhatsApp
from tests.integration._platform_harness import PlatformHarness, platform_gateway
from tests.integration.sms_harness import API_KEY

ALICE = "15551230001"
BOB = "15551230002"
MALLORY = "15559990000"
PATH = "/whatsapp/webhook"


class Harness(PlatformHarness[FakeWhatsApp, WhatsAppAdapter]):
    platform = "whatsapp"
    adapter_type = WhatsAppAdapter

    async def send(self, wa_id: str, text: str = "", **kw: Any) -> tuple[int, str]:
        return await self.fake.user_sends(wa_id, text, **kw)

    async def wait_texts(self, wa_id: str, count: int, timeout: float = 5.0) -> list[str]:
        return await self.wait_listed(lambda: self.fake.texts(wa_id), count, timeout)


@contextlib.asynccontextmanager
async def whatsapp_gateway(
    home: Any,
    openai: FakeOpenAI,
    *,
    fake: FakeWhatsApp | None = None,
    on_api: bool = False,
    configure: Callable[[Config], None] | None = None,
    **env: str,
) -> AsyncIterator[Harness]:
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeWhatsApp())
        if on_api:
            env = {"API_SERVER_KEY": API_KEY, "API_SERVER_PORT": "0", **env}
        else:
            env.setdefault("WHATSAPP_CLOUD_WEBHOOK_PORT", str(free_port()))
        env = {
            "WHATSAPP_CLOUD_PHONE_NUMBER_ID": fake.phone_number_id,
            "WHATSAPP_CLOUD_ACCESS_TOKEN": fake.token,
            "WHATSAPP_CLOUD_APP_SECRET": fake.app_secret,
            "WHATSAPP_CLOUD_VERIFY_TOKEN": fake.verify_token,
            "WHATSAPP_CLOUD_WEBHOOK_HOST": "127.0.0.1",
            "WHATSAPP_CLOUD_API_VERSION": VERSION,
            "WHATSAPP_CLOUD_ALLOWED_USERS": ALICE,
            **env,
        }
        config = make_config(home, openai, **env)
        config.platforms.whatsapp.graph_base = fake.base
        config.platforms.whatsapp.backoff_initial = 0.05
        config.platforms.whatsapp.rate_interval = 0.0
        async with platform_gateway(Harness, fake, config, configure) as harness:
            port = harness.runner.adapters["api"].port if on_api else harness.adapter.webhook_port  # type: ignore[attr-defined]
            fake.webhook_url = f"http://127.0.0.1:{port}{PATH}"
            yield harness
