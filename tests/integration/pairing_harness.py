"""A gateway whose only remote platform is the real Telegram adapter against FakeTelegram,
set up for pairing and approval tests: nobody is allowed by default, pacing is shrunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.access.pairing_gate import PairingGate
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram, SentMessage
from tests.helpers import Recorder

STRANGER = 991
FRIEND = 7


def pairing_config(home: Path, openai: FakeOpenAI, tg: FakeTelegram, **env: str) -> Config:
    """Telegram through the fake; only users in ``TELEGRAM_ALLOWED_USERS`` (none by default)."""
    from tests.integration.test_telegram_adapter import telegram_config

    env.setdefault("TELEGRAM_ALLOWED_USERS", "")
    env.setdefault("GATEWAY_ALLOW_ALL_USERS", "false")
    config = telegram_config(home, openai, tg, **env)
    config.platforms.telegram.poll_timeout = 1.0
    return config


class PairingHarness:
    """A running gateway plus what it published and what the fake Telegram holds."""

    def __init__(self, gw: Gateway, rec: Recorder, tg: FakeTelegram) -> None:
        self.gw, self.rec, self.tg = gw, rec, tg

    @classmethod
    async def start(cls, config: Config, tg: FakeTelegram) -> PairingHarness:
        gw = build_gateway(config)
        rec = Recorder(gw.bus)
        await gw.start(local=False)
        gw.approvals.operator_present = True  # answered as the TUI would
        harness = cls(gw, rec, tg)
        await rec.wait_for(
            lambda: any(
                e.platform == "telegram" and e.state == "connected"
                for e in rec.of(ev.PlatformStatus)
            )
        )
        return harness

    async def stop(self) -> None:
        self.rec.close()
        await self.gw.stop()

    @property
    def gate(self) -> PairingGate:
        assert self.gw.pairing is not None
        return self.gw.pairing

    def texts(self, chat: int) -> list[str]:
        return [m.plain_text for m in self.tg.messages_in(chat)]

    async def message_to(self, chat: int, containing: str, timeout: float = 5.0) -> SentMessage:
        """Wait for a bot message in ``chat`` whose text contains ``containing``."""

        def found() -> list[SentMessage]:
            return [m for m in self.tg.messages_in(chat) if containing in m.plain_text]

        await self.tg.wait_for(lambda: bool(found()), timeout)
        return found()[-1]

    async def code_sent_to(self, chat: int) -> str:
        """The pairing code in the bot's message, read from its ``code`` entity."""
        message = await self.message_to(chat, "pairing code")
        (entity,) = [e for e in message.entities if e["type"] == "code"]
        text = message.plain_text
        return text[entity["offset"] : entity["offset"] + entity["length"]]

    async def answered(self, turns: int, timeout: float = 5.0) -> None:
        await self.rec.wait_for(lambda: len(self.rec.of(ev.TurnFinished)) >= turns, timeout)
        assert self.gw.runner is not None
        await self.gw.runner.wait_idle(timeout)


def user_texts(openai: FakeOpenAI) -> list[Any]:
    """The last user message of every request the model received."""
    return [
        [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        for body in openai.requests
    ]
