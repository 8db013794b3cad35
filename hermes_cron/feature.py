"""Cron as a gateway feature: the scheduler, ``/cron`` and the ``cronjob`` tool.

Installed by the entry point; the gateway core never imports cron. Kept apart from
:mod:`hermes_cron.service` so the service does not import the command and the tool that are
built on it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hermes_cron.clock import Clock
from hermes_cron.commands import cron_command
from hermes_cron.events import CronJobChanged, CronRunFinished, CronRunStarted
from hermes_cron.service import CronService
from hermes_cron.settings import CronSettings
from hermes_cron.tool import CronJobTool
from hermes_gateway.events import GatewayEvent

if TYPE_CHECKING:
    from hermes_gateway.features import FeatureContext

__all__ = ["CronFeature"]


class CronFeature:
    """Scheduled agent runs; started after the platforms and stopped before them."""

    name = "cron"
    event_types: tuple[type[GatewayEvent], ...] = (CronJobChanged, CronRunStarted, CronRunFinished)

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock
        """The scheduler's time source (tests pass a ManualClock); the wall clock if None."""
        self.service: CronService | None = None

    def install(self, ctx: FeatureContext) -> None:
        settings = CronSettings.from_config(ctx.config)  # parsed once, here
        service = CronService(
            ctx.config, ctx.runner, ctx.runner.router, clock=self.clock, settings=settings
        )
        ctx.runner.commands.register(cron_command(service))
        ctx.tools.register(CronJobTool(service))
        self.service = service

    async def start(self) -> None:
        if self.service is not None:
            await self.service.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    def describe(self, event: GatewayEvent) -> tuple[int, str] | None:
        match event:
            case CronRunFinished(name=n, status=s, error=e, delivery_status=d):
                level = logging.INFO if s == "ok" else logging.WARNING
                why = f": {e}" if e else ""
                return level, f"cron job {n}: {s}{why} (delivery: {d or 'none'})"
        return None
