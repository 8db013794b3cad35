"""The whole gateway, assembled from config and started/stopped as one object.

The TUI and ``hermes gateway run`` both build a :class:`Gateway`; they differ only in whether
the local terminal is one of its platforms and in who reads the event bus.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hermes_gateway.access.approvals import ApprovalManager, install_approvals
from hermes_gateway.access.pairing_gate import PairingGate, install_pairing
from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.agent.loop import Agent
from hermes_gateway.agent.provider import ProviderPool
from hermes_gateway.agent.tools.registry import default_registry
from hermes_gateway.commands.builtin import build_registry
from hermes_gateway.config import Config
from hermes_gateway.delivery.router import DeliveryRouter
from hermes_gateway.events import EventBus
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_gateway.platforms.local import LocalAdapter
from hermes_gateway.runner import GatewayRunner
from hermes_gateway.store import SessionStore
from hermes_gateway.watchdog import LoopWatchdog

if TYPE_CHECKING:
    from hermes_cron.clock import Clock
    from hermes_cron.service import CronService

log = logging.getLogger(__name__)


def remote_adapters(config: Config, policy: AccessPolicy) -> list[PlatformAdapter]:
    """The remote platforms the configuration enables.

    Each platform's module (and its heavy library) is imported only when it is enabled.
    """
    adapters: list[PlatformAdapter] = []
    platforms = config.platforms
    if platforms.telegram.token:
        from hermes_gateway.platforms.telegram.adapter import TelegramAdapter

        adapters.append(TelegramAdapter(config, policy))
    if platforms.discord.token:
        from hermes_gateway.platforms.discord.adapter import DiscordAdapter

        adapters.append(DiscordAdapter(config, policy))
    if platforms.api_server.enabled:
        from hermes_gateway.platforms.api.server import ApiServerAdapter

        adapters.append(ApiServerAdapter(config, policy))
    return adapters


def preload_platform_modules(config: Config) -> None:
    """Import the enabled platforms' modules (and their libraries) ahead of start().

    Meant for a worker thread: python-telegram-bot, discord.py and aiohttp take about a
    second to import, which on the event loop would freeze a screen that is already up.
    """
    import importlib

    platforms = config.platforms
    wanted = {
        "hermes_gateway.platforms.telegram.adapter": bool(platforms.telegram.token),
        "hermes_gateway.platforms.discord.adapter": bool(platforms.discord.token),
        "hermes_gateway.platforms.api.server": platforms.api_server.enabled,
    }
    for module, enabled in wanted.items():
        if enabled:
            importlib.import_module(module)


class Gateway:
    def __init__(
        self, config: Config, *, bus: EventBus | None = None, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.cron_clock = clock
        """The scheduler's time source (tests pass a ManualClock); the wall clock if None."""
        self.router: DeliveryRouter | None = None
        self.cron: CronService | None = None
        self.bus = bus or EventBus()
        self.local = LocalAdapter()
        self.watchdog = LoopWatchdog(
            self.bus, threshold=config.gateway.loop_lag_threshold_ms / 1000
        )
        self.store: SessionStore | None = None
        self.runner: GatewayRunner | None = None
        self.policy = AccessPolicy(config)
        self._warming: asyncio.Task[None] | None = None
        self.pairing: PairingGate | None = None
        self.approvals: ApprovalManager | None = None

    async def start(
        self, *, local: bool = True, adapters: list[PlatformAdapter] | None = None
    ) -> GatewayRunner:
        cfg = self.config
        self.store = await SessionStore.open(cfg.paths.database)
        tools = default_registry(
            terminal_timeout=cfg.agent.terminal_timeout, output_cap=cfg.agent.tool_output_cap
        )
        agent = Agent(
            ProviderPool(),
            tools,
            max_iterations=cfg.agent.max_iterations,
            max_retries=cfg.model.max_retries,
        )
        # Build the model client in the background: platforms (and /health) need not wait.
        self._warming = asyncio.create_task(agent.pool.warm(cfg.model), name="warm-client")
        runner = GatewayRunner(
            cfg, self.store, self.bus, agent, build_registry(), authorize=self.policy.authorize
        )
        if local:
            runner.add_adapter(self.local)
        for adapter in remote_adapters(cfg, self.policy) if adapters is None else adapters:
            runner.add_adapter(adapter)
        self.runner = runner
        # --- pairing and approvals: who gets in, and dangerous tool calls wait for a yes
        self.pairing = install_pairing(cfg, runner, self.policy)
        self.approvals = install_approvals(cfg, runner, agent)
        await self.pairing.start()
        self.router = DeliveryRouter(cfg, runner.adapters)
        from hermes_cron.install import install_cron

        self.cron = install_cron(cfg, runner, self.router, tools, clock=self.cron_clock)
        await runner.start()
        await self.cron.start()
        self.watchdog.start()
        log.info("gateway started with %s", ", ".join(runner.adapters) or "no platforms")
        return runner

    async def stop(self) -> None:
        await self.watchdog.stop()
        if self._warming is not None and not self._warming.done():
            # The thread cannot be interrupted; waiting for it keeps its client closable.
            await asyncio.gather(self._warming, return_exceptions=True)
        if self.cron is not None:
            await self.cron.stop()
        if self.runner is not None:
            await self.runner.stop()
        if self.pairing is not None:
            await self.pairing.stop()
        if self.approvals is not None:
            await self.approvals.aclose()
        if self.store is not None:
            await self.store.close()
        log.info("gateway stopped")
