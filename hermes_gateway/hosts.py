"""The narrow faces the gateway shows to the parts plugged into it.

Adapters, commands and API endpoints each see one small protocol with the few things they
use, never the runner itself, so a new platform or command can be written (and tested) against
a host of a few lines, and the runner can change shape without touching them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import TurnResult
    from hermes_gateway.commands.registry import CommandRegistry
    from hermes_gateway.config import Config, ModelConfig
    from hermes_gateway.delivery.router import DeliveryRouter
    from hermes_gateway.events import GatewayEvent, PlatformStatus
    from hermes_gateway.models import MessageEvent, SessionSource
    from hermes_gateway.platforms.base import TurnDelivery
    from hermes_gateway.runner.sessions import SessionRuntime
    from hermes_gateway.store import SessionRecord, SessionStore, StoredMessage

__all__ = ["AdapterHost", "ApiHost", "CommandHost"]


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

    async def receive(self, event: MessageEvent) -> None:
        """Hand in one inbound message; returns once the runner has taken it."""
        ...

    def report(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        """The adapter's connection state, shown live in the Platforms pane."""
        ...


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
    ) -> tuple[SessionRecord, TurnResult]:
        """One agent turn whose caller waits for the answer (see ``RequestTurns``)."""
        ...


class CommandHost(Protocol):
    """What a slash command may do: sessions of the chat it came from, the store, settings."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> SessionStore: ...

    @property
    def commands(self) -> CommandRegistry: ...

    async def runtime(self, source: SessionSource) -> SessionRuntime:
        """The chat's live session (created on first contact)."""
        ...

    async def reset_session(self, source: SessionSource) -> SessionRecord: ...

    async def activate_session(self, source: SessionSource, record: SessionRecord) -> None: ...

    def interrupt(self, session_key: str, *, drop_pending: bool = True) -> bool: ...

    async def handle(self, event: MessageEvent) -> None:
        """Run a message through the pipeline again (``/retry``)."""
        ...

    def model_for(self, rt: SessionRuntime) -> ModelConfig: ...

    def publish_session(self, rt: SessionRuntime, reason: str) -> None: ...

    @property
    def platform_state(self) -> Mapping[str, PlatformStatus]: ...
