"""Plugging cron into a gateway: one call from ``Gateway.start``.

Kept apart from :mod:`hermes_cron.service` so the service does not import the command and
the tool that are built on it.
"""

from __future__ import annotations

from hermes_cron.clock import Clock
from hermes_cron.commands import cron_command
from hermes_cron.service import CronService
from hermes_cron.tool import CronJobTool
from hermes_gateway.agent.tools.registry import ToolRegistry
from hermes_gateway.config import Config
from hermes_gateway.delivery.router import DeliveryRouter
from hermes_gateway.runner import GatewayRunner

__all__ = ["install_cron"]


def install_cron(
    config: Config,
    runner: GatewayRunner,
    router: DeliveryRouter,
    tools: ToolRegistry,
    *,
    clock: Clock | None = None,
) -> CronService:
    """Build the cron service and register ``/cron`` and the ``cronjob`` tool.

    The caller starts it (``await service.start()``) once the runner runs, and stops it
    before the runner stops.
    """
    service = CronService(config, runner, router, clock=clock)
    runner.commands.register(cron_command(service))
    tools.register(CronJobTool(service))
    return service
