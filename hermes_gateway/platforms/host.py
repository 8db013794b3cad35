"""What a platform adapter may ask of the gateway: the one object handed to ``bind()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hermes_gateway.commands.registry import CommandRegistry
    from hermes_gateway.models import MessageEvent
    from hermes_gateway.platforms.web_routes import WebRoutes
    from hermes_gateway.store import SessionStore

__all__ = ["AdapterHost"]


class AdapterHost(Protocol):
    """What a platform adapter may ask of the gateway (handed to it by ``bind()``)."""

    @property
    def stopping(self) -> bool:
        """True once the gateway stops: updates received now are kept for the next start."""
        ...

    @property
    def store(self) -> SessionStore:
        """For the adapter's own small state (e.g. Telegram's update watermark in kv)."""
        ...

    @property
    def commands(self) -> CommandRegistry:
        """The slash commands, for the platform's command menu."""
        ...

    @property
    def web_routes(self) -> WebRoutes:
        """The gateway's table of webhook routes (see :mod:`.web_routes`): a platform adds
        its routes here; the API server serves them when it runs."""
        ...

    async def receive(self, event: MessageEvent) -> None:
        """Hand in one inbound message; returns once the runner has taken it."""
        ...

    def report(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        """The adapter's connection state, shown live in the Platforms pane."""
        ...
