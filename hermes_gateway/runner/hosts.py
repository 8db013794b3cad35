"""The runner's implementation of the host protocols handed to adapters.

One small object per platform: it knows the platform's name (so ``report`` needs none) and
offers only what :class:`~hermes_gateway.hosts.ApiHost` lists, never the runner itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hermes_gateway.commands.registry import CommandRegistry
    from hermes_gateway.config import Config
    from hermes_gateway.delivery.router import DeliveryRouter
    from hermes_gateway.events import EventBus, GatewayEvent
    from hermes_gateway.models import MessageEvent, SessionSource
    from hermes_gateway.platforms.web_routes import WebRoutes
    from hermes_gateway.runner.requests import RequestTurns
    from hermes_gateway.runner.supervisor import PlatformSupervisor
    from hermes_gateway.store import SessionStore

__all__ = ["RunnerAdapterHost"]


class _Core(Protocol):
    """The runner as this host uses it (a protocol, so this module needs no pipeline)."""

    config: Config
    store: SessionStore
    bus: EventBus
    commands: CommandRegistry
    router: DeliveryRouter
    supervisor: PlatformSupervisor
    requests: RequestTurns
    web_routes: WebRoutes

    @property
    def stopping(self) -> bool: ...

    @property
    def paused_sessions(self) -> set[str]: ...

    @property
    def paused_platforms(self) -> set[str]: ...

    async def handle(self, event: MessageEvent) -> None: ...


class RunnerAdapterHost:
    """Implements :class:`~hermes_gateway.hosts.ApiHost` (and so ``AdapterHost``)."""

    __slots__ = ("_platform", "_runner", "run_request")

    def __init__(self, runner: _Core, platform: str) -> None:
        self._runner = runner
        self._platform = platform
        self.run_request = runner.requests.run

    @property
    def stopping(self) -> bool:
        return self._runner.stopping

    @property
    def store(self) -> SessionStore:
        return self._runner.store

    @property
    def commands(self) -> CommandRegistry:
        return self._runner.commands

    @property
    def config(self) -> Config:
        return self._runner.config

    @property
    def router(self) -> DeliveryRouter:
        return self._runner.router

    @property
    def web_routes(self) -> WebRoutes:
        return self._runner.web_routes

    async def receive(self, event: MessageEvent) -> None:
        await self._runner.handle(event)

    def report(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        self._runner.supervisor.report(self._platform, state, detail, retry_in)

    def publish(self, event: GatewayEvent) -> None:
        self._runner.bus.publish(event)

    def paused(self, source: SessionSource) -> str | None:
        runner = self._runner
        if self._platform in runner.paused_platforms or source.platform in runner.paused_platforms:
            return "platform"
        if source.session_key in runner.paused_sessions:
            return "session"
        return None
