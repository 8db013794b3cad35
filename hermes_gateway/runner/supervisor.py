"""Adapter supervision: start each platform in its own task, restart it with the shared
backoff, keep its state and counters, and pause or resume it for the operator.

One failing platform never stops another; its state and counters are published as events
(``PlatformStatus``, ``PlatformCounters``) so the control room never polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hermes_gateway import events as ev
from hermes_gateway.backoff import Backoff
from hermes_gateway.platforms.base import FatalPlatformError, PlatformAdapter
from hermes_gateway.platforms.host import AdapterHost

__all__ = ["RESTART_BACKOFF_CAP", "PlatformStats", "PlatformSupervisor"]

log = logging.getLogger(__name__)

RESTART_BACKOFF_CAP = 300.0


@dataclass
class PlatformStats:
    """Per-platform counters for the Platforms pane."""

    received: int = 0
    sent: int = 0
    last_error: str = ""


class PlatformSupervisor:
    """The running platforms, their last state and counters, and the operator's pauses."""

    def __init__(
        self, bus: ev.EventBus, *, on_first_connect: Callable[[str], None] | None = None
    ) -> None:
        self.bus = bus
        self.on_first_connect = on_first_connect
        """Called once per platform when it first reports ``connected`` (resume its work)."""
        self._connected_once: set[str] = set()
        self.adapters: dict[str, PlatformAdapter] = {}
        self.state: dict[str, ev.PlatformStatus] = {}
        self.stats: dict[str, PlatformStats] = {}
        self.paused: set[str] = set()
        self._before_pause: dict[str, ev.PlatformStatus] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = False

    def add(self, adapter: PlatformAdapter, host: Callable[[str], AdapterHost]) -> None:
        """Register ``adapter`` and bind it to the host made for its platform name."""
        adapter.bind(host(adapter.name))
        self.adapters[adapter.name] = adapter

    # --- state and counters -------------------------------------------------------------

    def report(
        self, platform: str, state: str, detail: str = "", retry_in: float | None = None
    ) -> None:
        event = ev.PlatformStatus(platform=platform, state=state, detail=detail, retry_in=retry_in)  # type: ignore[arg-type]
        if state == "connected" and platform not in self._connected_once:
            self._connected_once.add(platform)
            if self.on_first_connect is not None and not self.stopping:
                self.on_first_connect(platform)
        if state in ("failed", "reconnecting") and detail:
            self.error(platform, detail)
        if platform in self.paused and state != "failed":
            self._before_pause[platform] = event  # shown again on resume
            return
        self.state[platform] = event
        self.bus.publish(event)

    def stats_for(self, platform: str) -> PlatformStats:
        stats = self.stats.get(platform)
        if stats is None:
            stats = self.stats[platform] = PlatformStats()
        return stats

    def received(self, platform: str) -> None:
        self.stats_for(platform).received += 1
        self._publish_counters(platform)

    def sent(self, platform: str) -> None:
        self.stats_for(platform).sent += 1
        self._publish_counters(platform)

    def error(self, platform: str, detail: str) -> None:
        self.stats_for(platform).last_error = detail
        self._publish_counters(platform)

    def _publish_counters(self, platform: str) -> None:
        s = self.stats[platform]
        self.bus.publish(
            ev.PlatformCounters(
                platform=platform, received=s.received, sent=s.sent, last_error=s.last_error
            )
        )

    # --- pause ----------------------------------------------------------------------------

    def set_paused(self, platform: str, paused: bool) -> None:
        """Record the pause and publish the platform's shown state (the caller interrupts)."""
        if paused:
            self.paused.add(platform)
            before = self.state.get(platform)
            if before is not None and before.state != "paused":
                self._before_pause[platform] = before
            event = ev.PlatformStatus(
                platform=platform, state="paused", detail="paused by the operator"
            )
        else:
            self.paused.discard(platform)
            before = self._before_pause.pop(platform, None)
            event = ev.PlatformStatus(
                platform=platform,
                state=before.state if before else "connected",
                detail=before.detail if before else "",
            )
        self.state[platform] = event
        self.bus.publish(event)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every adapter in its own supervised task."""
        for adapter in self.adapters.values():
            task = asyncio.create_task(self._supervise(adapter), name=f"platform:{adapter.name}")
            self._tasks.append(task)
        await asyncio.sleep(0)

    async def _supervise(self, adapter: PlatformAdapter) -> None:
        backoff = Backoff(1.0, RESTART_BACKOFF_CAP, jitter=0.0)
        while not self.stopping:
            adapter.report("starting")
            try:
                await adapter.start()
                return
            except FatalPlatformError as exc:
                log.error("%s cannot start: %s", adapter.name, exc)
                adapter.report("failed", str(exc))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                log.warning("%s failed to start: %s; retrying in %.0fs", adapter.name, exc, delay)
                adapter.report("reconnecting", str(exc) or type(exc).__name__, delay)
                await asyncio.sleep(delay)

    def cancel(self) -> None:
        """Stop restarting platforms (the first step of shutdown)."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()

    async def stop_adapters(self) -> None:
        for adapter in self.adapters.values():
            try:
                await asyncio.wait_for(adapter.stop(), timeout=10)
            except Exception:
                log.exception("stopping %s failed", adapter.name)
