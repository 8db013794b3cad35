"""The whole gateway, assembled from config and started/stopped as one object.

The TUI and ``hermes gateway run`` both build a :class:`Gateway`; they differ only in whether
the local terminal is one of its platforms, which features they install and who reads the
event bus. The core imports no feature and no platform: features are handed in, platforms
are found through the registry (:mod:`hermes_gateway.platforms.registry`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.agent.loop import Agent
from hermes_gateway.agent.provider import ProviderPool
from hermes_gateway.agent.tools.registry import default_registry
from hermes_gateway.commands.builtin import build_registry
from hermes_gateway.config import Config
from hermes_gateway.events import EventBus, Notice
from hermes_gateway.features import Feature, FeatureContext
from hermes_gateway.importer import import_offer, imported_personality
from hermes_gateway.operator import OperatorControl
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_gateway.platforms.local import LocalAdapter
from hermes_gateway.platforms.registry import enabled_adapters
from hermes_gateway.redact import register_config_secrets
from hermes_gateway.runner import GatewayRunner
from hermes_gateway.status_file import StatusFile
from hermes_gateway.store import SessionStore
from hermes_gateway.watchdog import LoopWatchdog

__all__ = ["Gateway"]

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self,
        config: Config,
        *,
        bus: EventBus | None = None,
        features: Sequence[Feature] = (),
    ) -> None:
        self.config = config
        register_config_secrets(config)  # from now on no log line or error text shows them
        self.bus = bus or EventBus()
        self.local = LocalAdapter()
        self.watchdog = LoopWatchdog(
            self.bus, threshold=config.gateway.loop_lag_threshold_ms / 1000
        )
        self.store: SessionStore | None = None
        self.runner: GatewayRunner | None = None
        self.operator: OperatorControl | None = None
        """What the TUI drives the gateway through (set by start())."""
        self.policy = AccessPolicy(config)
        self.features: dict[str, Feature] = {f.name: f for f in features}
        self._warming: asyncio.Task[None] | None = None
        self._offer: asyncio.Task[None] | None = None
        self._status: StatusFile | None = None
        self._started: list[Feature] = []

    def feature(self, name: str) -> Any:
        """An installed feature by name (None if this entry point did not install it)."""
        return self.features.get(name)

    # Shortcuts to the features' main objects, for the screens and tests that use them.
    @property
    def pairing(self) -> Any:
        feature = self.features.get("pairing")
        return getattr(feature, "gate", None)

    @property
    def approvals(self) -> Any:
        feature = self.features.get("approvals")
        return getattr(feature, "manager", None)

    @property
    def cron(self) -> Any:
        feature = self.features.get("cron")
        return getattr(feature, "service", None)

    async def start(
        self,
        *,
        local: bool = True,
        adapters: list[PlatformAdapter] | None = None,
        status_file: bool = True,
        offer_import: bool = True,
    ) -> GatewayRunner:
        """Open the store, install the features, start the platforms.

        Args:
            local: The terminal is one of the platforms (the TUI, ``hermes chat``).
            adapters: These platforms instead of the configured ones (tests, ``hermes chat``).
            status_file: Keep the home's status file (only the process holding the home's lock
                does; ``hermes chat`` runs beside a gateway without it).
            offer_import: Publish the import offer (:meth:`import_offer`) as a Notice once
                started. A screen that loads its transcript after the start shows it itself
                instead, where a reload cannot wipe it.
        """
        self.store = await SessionStore.open(self.config.paths.database)
        cfg = self.config = await _with_imported_personality(self.config, self.store)
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
        for adapter in enabled_adapters(cfg, self.policy) if adapters is None else adapters:
            runner.add_adapter(adapter)
        self.runner = runner
        self.operator = OperatorControl(runner, self.local)
        ctx = FeatureContext(
            config=cfg, runner=runner, agent=agent, tools=tools, policy=self.policy
        )
        for feature in self.features.values():
            feature.install(ctx)
        for feature in self.features.values():  # e.g. pairing is ready before any stranger
            await feature.start()
            self._started.append(feature)
        await runner.start()
        self.watchdog.start()
        if status_file:
            self._status = StatusFile(cfg.paths.home, self.bus, mode="tui" if local else "headless")
            self._status.start([name for name in runner.adapters if name != self.local.name])
        if offer_import:
            self._offer = asyncio.create_task(self._publish_offer(), name="import-offer")
        for text in cfg.warnings:  # e.g. the Hermes Agent keys ignored here: said once
            self.bus.publish(Notice(text=text, level="warning"))
        log.info("gateway started with %s", ", ".join(runner.adapters) or "no platforms")
        return runner

    async def import_offer(self) -> str | None:
        """Hermes Agent's files are in the home and were never imported: how to (else None)."""
        if self.store is None:
            return None
        try:
            return await import_offer(self.store, self.config.paths.home)
        except Exception:  # a notice is not worth a failed start
            log.exception("looking for Hermes Agent data failed")
            return None

    async def _publish_offer(self) -> None:
        text = await self.import_offer()
        if text:
            self.bus.publish(Notice(text=text, level="info"))

    async def stop(self) -> None:
        await self.watchdog.stop()
        if self._offer is not None:
            self._offer.cancel()
            await asyncio.gather(self._offer, return_exceptions=True)
        if self._warming is not None and not self._warming.done():
            # The thread cannot be interrupted; waiting for it keeps its client closable.
            await asyncio.gather(self._warming, return_exceptions=True)
        # Features stop first, in reverse order: cron interrupts its runs, approvals deny the
        # calls still waiting, so the runner's turns can end and store what they have.
        for feature in reversed(self._started):
            await _stop(feature)
        self._started.clear()
        if self.runner is not None:
            await self.runner.stop()
        if self.store is not None:
            await self.store.close()
        if self._status is not None:
            await self._status.stop()
        log.info("gateway stopped")


async def _with_imported_personality(config: Config, store: SessionStore) -> Config:
    """The config with the personality an import brought in (``SOUL.md``) added.

    The configuration wins: a personality of the same name defined there is kept, and the
    imported one is the default only when none is configured (as SOUL.md is Hermes Agent's
    identity unless told otherwise).
    """
    imported = await imported_personality(store)
    if imported is None:
        return config
    name, text = imported
    personalities = {name: text, **config.personalities}
    return dataclasses.replace(
        config, personalities=personalities, personality=config.personality or name
    )


async def _stop(feature: Feature) -> None:
    try:
        await feature.stop()
    except Exception:
        log.exception("stopping the %s feature failed", feature.name)
