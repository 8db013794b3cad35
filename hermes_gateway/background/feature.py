"""Background runs as a gateway feature: ``/background`` and ``/stop`` for its runs.

Installed by the entry point (``hermes_tui/assembly.py``); the core never imports this
package (import-linter), so the runner knows nothing of background runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hermes_gateway.background.commands import background_command, stop_with_background
from hermes_gateway.background.events import BackgroundRunChanged
from hermes_gateway.background.runs import preview
from hermes_gateway.background.service import MAX_PER_CHAT, BackgroundService
from hermes_gateway.events import GatewayEvent

if TYPE_CHECKING:
    from hermes_gateway.features import FeatureContext

__all__ = ["BackgroundFeature"]


class BackgroundFeature:
    """``/background`` runs; started before the platforms (runs left by a previous process
    are reported as each chat's platform connects) and stopped before the runner."""

    name = "background"
    event_types: tuple[type[GatewayEvent], ...] = (BackgroundRunChanged,)

    def __init__(self, *, max_per_chat: int = MAX_PER_CHAT) -> None:
        self.max_per_chat = max_per_chat
        self.service: BackgroundService | None = None

    def install(self, ctx: FeatureContext) -> None:
        service = BackgroundService(ctx.runner, max_per_chat=self.max_per_chat)
        commands = ctx.runner.commands
        commands.register(background_command(service))
        stop = commands.resolve("stop")
        if stop is not None:
            commands.replace(stop_with_background(stop, service))
        self.service = service

    async def start(self) -> None:
        if self.service is not None:
            await self.service.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    def describe(self, event: GatewayEvent) -> tuple[int, str] | None:
        if not isinstance(event, BackgroundRunChanged) or event.state == "progress":
            return None
        level = logging.WARNING if event.state in ("failed", "interrupted") else logging.INFO
        extra = f" (not delivered: {event.delivery_error})" if event.delivery_error else ""
        what = f"background run {event.run_id} for {event.origin_key}"
        return level, f"{what}: {event.state} “{preview(event.prompt)}”{extra}"
