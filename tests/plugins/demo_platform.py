"""A third-party platform in miniature: one module, found through the entry-point group."""

from __future__ import annotations

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import Config
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_gateway.platforms.registry import lazy_plugin


class DemoAdapter(PlatformAdapter):
    name = "demo"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    async def start(self) -> None:
        self.report("connected", "demo")

    async def stop(self) -> None:
        self.report("stopped")

    async def send(self, source: SessionSource, text: str) -> None:
        self.sent.append((source.chat_id, text))

    async def say(self, chat: str, text: str) -> None:
        source = SessionSource(platform="demo", chat_id=chat, user_id=chat, user_name=chat)
        await self.dispatch(MessageEvent(text=text, source=source, message_id=text))


PLUGIN = lazy_plugin("demo", lambda config: True, "tests.plugins.demo_platform:DemoAdapter")
