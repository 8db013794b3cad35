"""The narrow faces the gateway shows to the parts plugged into it.

Adapters, commands and API endpoints each see one small protocol with the few things they
use, never the runner itself, so a new platform or command can be written (and tested) against
a host of a few lines, and the runner can change shape without touching them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from hermes_gateway.commands.host import CommandHost
from hermes_gateway.platforms.host import AdapterHost

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import TurnOptions, TurnResult
    from hermes_gateway.config import Config
    from hermes_gateway.delivery.router import DeliveryRouter
    from hermes_gateway.events import GatewayEvent
    from hermes_gateway.models import SessionSource
    from hermes_gateway.platforms.base import TurnDelivery
    from hermes_gateway.store import SessionRecord, StoredMessage

__all__ = ["AdapterHost", "ApiHost", "CommandHost"]


class ApiHost(AdapterHost, Protocol):
    """What request/response platforms (the HTTP API, webhooks) need besides an adapter's."""

    @property
    def config(self) -> Config: ...

    @property
    def router(self) -> DeliveryRouter:
        """Delivers webhook answers to chats on other platforms."""
        ...

    def publish(self, event: GatewayEvent) -> None: ...

    def paused(self, source: SessionSource) -> str | None:
        """ "platform" or "session" while the operator has paused it, else None."""
        ...

    async def run_request(
        self,
        source: SessionSource,
        messages: list[StoredMessage],
        *,
        delivery: TurnDelivery,
        history: list[dict[str, Any]] | None = None,
        instructions: str | None = None,
        new_session: bool = False,
        keep: bool = True,
        model_name: str | None = None,
        use_tools: bool = True,
        acting_for: SessionSource | None = None,
        options: TurnOptions | None = None,
    ) -> tuple[SessionRecord, TurnResult]:
        """One agent turn whose caller waits for the answer (see ``RequestTurns``)."""
        ...
