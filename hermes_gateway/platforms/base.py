"""What every platform adapter provides, and nothing more.

An adapter connects (and reconnects), turns its platform's updates into
:class:`~hermes_gateway.models.MessageEvent` and hands them to the runner, and delivers
answers in its platform's way (chunking, Markdown flavour, edits, typing). Who may talk,
which session a message belongs to and what the agent does are the runner's business.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Protocol

from hermes_gateway.models import MessageEvent, SessionSource

if TYPE_CHECKING:
    from hermes_gateway.platforms.host import AdapterHost


class FatalPlatformError(Exception):
    """The platform cannot work until the user changes something (e.g. an invalid token)."""


class IntakeError(Exception):
    """The gateway could not store an inbound message (disk full, read-only database...).

    Raised by ``AdapterHost.receive``; the adapter must then NOT confirm the message to its
    platform, so the platform delivers it again and nothing acknowledged is lost.
    """


class TurnDelivery(Protocol):
    """How one agent answer reaches a chat while it is being written."""

    def on_delta(self, text: str) -> None: ...
    def on_tool_started(self, name: str, preview: str) -> None: ...
    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None: ...
    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None: ...


class NullDelivery:
    """Delivers nothing: for chats that are rendered from the bus (the local terminal)."""

    def on_delta(self, text: str) -> None:
        pass

    def on_tool_started(self, name: str, preview: str) -> None:
        pass

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        pass

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        pass


NULL_DELIVERY = NullDelivery()


class FinalOnlyDelivery:
    """Sends the finished answer in one go: for platforms that cannot edit messages."""

    def __init__(self, adapter: PlatformAdapter, source: SessionSource) -> None:
        self._adapter, self._source = adapter, source

    def on_delta(self, text: str) -> None:
        pass

    def on_tool_started(self, name: str, preview: str) -> None:
        pass

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        pass

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        body = text
        if error:
            body = f"{text}\n\n⚠ {error}" if text else f"⚠ {error}"
        elif interrupted:
            body = f"{text}\n\n(interrupted)" if text else "(interrupted)"
        if body:
            await self._adapter.send(self._source, body)


class PlatformAdapter(ABC):
    """Base of every platform. Subclasses set ``name`` and implement start/stop/send."""

    name: str = ""
    acknowledges_busy: bool = True
    """Whether a follow-up sent during an answer gets a line back (``gateway.busy_ack``):
    off where each message is a mail, a paid text or a spoken reply, and in the terminal."""

    def __init__(self) -> None:
        self._host: AdapterHost | None = None

    def bind(self, host: AdapterHost) -> None:
        """Called by the gateway before start(): all the adapter may ask of it."""
        self._host = host

    @property
    def host(self) -> AdapterHost:
        if self._host is None:
            raise RuntimeError(f"{self.name} adapter is not bound to a gateway")
        return self._host

    @property
    def bound(self) -> bool:
        return self._host is not None

    async def dispatch(self, event: MessageEvent) -> None:
        """Hand one inbound message to the gateway."""
        await self.host.receive(event)

    def report(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        if self._host is not None:
            self._host.report(state, detail, retry_in)

    @abstractmethod
    async def start(self) -> None:
        """Connect; return once running (raise FatalPlatformError if it never can)."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect cleanly, finishing in-flight deliveries where possible."""

    @abstractmethod
    async def send(self, source: SessionSource, text: str) -> None:
        """Send a complete message (command replies, notices, cron results)."""

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        """Delivery for one streamed answer; platforms that can edit override this."""
        return FinalOnlyDelivery(self, source)

    async def send_typing(self, source: SessionSource) -> None:  # noqa: B027 - optional
        """Show that the agent is working, where the platform can."""
