"""The local REPL as a platform: the person at the terminal is one more chat.

The TUI (or a test) calls :meth:`LocalAdapter.submit`; the message then takes exactly the
path a Telegram message takes. Nothing is "sent" back: the TUI renders the conversation from
the event bus, like it renders every other chat.
"""

from __future__ import annotations

import getpass

from hermes_gateway.models import LOCAL_PLATFORM, MessageEvent, SessionSource
from hermes_gateway.platforms.base import NULL_DELIVERY, PlatformAdapter, TurnDelivery


def local_source() -> SessionSource:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "operator"
    return SessionSource(
        platform=LOCAL_PLATFORM,
        chat_id="operator",
        chat_type="dm",
        user_id=user,
        user_name=user,
        chat_name="Terminal",
    )


class LocalAdapter(PlatformAdapter):
    name = LOCAL_PLATFORM
    acknowledges_busy = False  # the person at the terminal sees the answer stop or go on

    def __init__(self) -> None:
        super().__init__()
        self.source = local_source()

    async def start(self) -> None:
        self.report("connected", "this terminal")

    async def stop(self) -> None:
        self.report("stopped")

    async def submit(self, text: str) -> None:
        """Hand one line typed at the terminal to the runner."""
        await self.dispatch(MessageEvent(text=text, source=self.source))

    async def send(self, source: SessionSource, text: str) -> None:
        """Nothing to do: the TUI shows CommandReplied/Notice events from the bus."""

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        return NULL_DELIVERY
