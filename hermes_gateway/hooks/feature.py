"""The hooks feature: loads ``HERMES_HOME/hooks`` at start and fires the hook events.

Installed at the one wiring point (``hermes_tui/assembly.py``) like pairing and cron. At start
it imports the hooks (off the loop), publishes :class:`~.events.HooksLoaded`, listens on the
bus through the :class:`~.bridge.HookBridge`, gates commands for ``command:<name>`` and fires
``gateway:startup``. Every failure becomes a :class:`~.events.HookFailed` on the bus and a log
line; none reaches the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hermes_gateway.commands.registry import CommandVerdict
from hermes_gateway.events import GatewayEvent
from hermes_gateway.hooks.bridge import HookBridge, source_context
from hermes_gateway.hooks.dispatch import HookDispatcher
from hermes_gateway.hooks.events import HookFailed, HooksLoaded
from hermes_gateway.hooks.loader import load_hooks

if TYPE_CHECKING:
    from hermes_gateway.features import FeatureContext
    from hermes_gateway.models import MessageEvent
    from hermes_gateway.runner import GatewayRunner

__all__ = ["HooksFeature"]

log = logging.getLogger(__name__)

STARTUP_WAIT = 30.0
"""Seconds ``gateway:startup`` waits for the platforms to connect (or fail) at most."""
_SETTLED = frozenset({"connected", "failed", "stopped", "paused"})


class HooksFeature:
    """Hermes Agent-compatible event hooks (see :mod:`hermes_gateway.hooks`)."""

    name = "hooks"
    event_types: tuple[type[GatewayEvent], ...] = (HooksLoaded, HookFailed)

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self._runner: GatewayRunner | None = None
        self.dispatcher: HookDispatcher | None = None
        self.loaded: HooksLoaded | None = None
        """What the last start loaded (the app lists it, with ``dispatcher.last_error``)."""
        self._unlisten: Callable[[], None] | None = None
        self._startup: asyncio.Task[None] | None = None

    @property
    def folder(self) -> Path:
        if self._folder is not None:
            return self._folder
        assert self._runner is not None, "install() first"
        return self._runner.config.paths.home / "hooks"

    def install(self, ctx: FeatureContext) -> None:
        self._runner = ctx.runner
        ctx.runner.command_gate = self._gate

    async def start(self) -> None:
        runner = self._runner
        assert runner is not None, "install() first"
        folder = self.folder
        hooks, problems = await asyncio.to_thread(load_hooks, folder)
        self.dispatcher = dispatcher = HookDispatcher(hooks, runner.bus.publish)
        dispatcher.start()
        self.loaded = HooksLoaded(
            folder=str(folder),
            hooks=tuple(h.info for h in hooks),
            problems=tuple(problems),
        )
        runner.bus.publish(self.loaded)
        if not hooks:
            return
        bridge = HookBridge(dispatcher.notify, self._source)
        self._unlisten = runner.bus.add_listener(bridge)
        self._startup = asyncio.create_task(self._announce_startup(), name="hooks-startup")

    async def _announce_startup(self) -> None:
        """``gateway:startup`` once every platform has connected or failed (as Hermes Agent
        fires it after connecting them), with the connected ones; at most after a wait."""
        runner, dispatcher = self._runner, self.dispatcher
        assert runner is not None and dispatcher is not None
        names = [name for name in runner.adapters if name != "local"]
        settled = asyncio.Event()

        def check(event: GatewayEvent | None = None) -> None:
            states = runner.platform_state
            if all(n in states and states[n].state in _SETTLED for n in names):
                settled.set()

        check()
        remove = runner.bus.add_listener(check)
        try:
            await asyncio.wait_for(settled.wait(), STARTUP_WAIT)
        except TimeoutError:
            log.info("gateway:startup after %.0fs: not every platform connected", STARTUP_WAIT)
        finally:
            remove()
        states = runner.platform_state
        connected = [n for n in names if n in states and states[n].state == "connected"]
        dispatcher.notify("gateway:startup", {"platforms": connected})

    def _source(self, session_key: str) -> Any:
        runner = self._runner
        rt = runner.sessions.get(session_key) if runner is not None else None
        return rt.source if rt is not None else None

    async def stop(self) -> None:
        if self._startup is not None:
            self._startup.cancel()
            await asyncio.gather(self._startup, return_exceptions=True)
            self._startup = None
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self.dispatcher is not None:
            await self.dispatcher.stop()

    async def _gate(
        self, event: MessageEvent, command: str, typed: str, args: str
    ) -> CommandVerdict | None:
        """``command:<name>`` for the hooks, awaited: a hook may deny, answer or rewrite the
        command (Hermes Agent's decisions); each call within its timeout."""
        dispatcher = self.dispatcher
        event_type = f"command:{command}"
        if dispatcher is None or not dispatcher.wants(event_type):
            return None
        context = {
            **source_context(event.source),
            "command": command,
            "raw_command": typed,
            "args": args,
            "raw_args": args,
        }
        for result in await dispatcher.run(event_type, context):
            verdict = _verdict(result, typed)
            if verdict is not None:
                return verdict
        return None

    def describe(self, event: GatewayEvent) -> tuple[int, str] | None:
        """The loaded hooks in one line; problems and failures are logged where they happen
        (the loader, the dispatcher), so they are not said twice."""
        if isinstance(event, HooksLoaded) and event.hooks:
            names = ", ".join(h.name for h in event.hooks)
            return logging.INFO, f"hooks loaded from {event.folder}: {names}"
        return None


def _verdict(result: Any, typed: str) -> CommandVerdict | None:
    """A hook's return value as Hermes Agent reads it: a dict with ``decision``."""
    if not isinstance(result, dict):
        return None
    decision = str(result.get("decision", "")).strip().lower()
    message = result.get("message")
    text = message if isinstance(message, str) else ""
    if decision == "deny":
        return CommandVerdict("deny", text or f"Command /{typed} was blocked by a hook.")
    if decision == "handled":
        return CommandVerdict("handled", text)
    if decision == "rewrite":
        name = str(result.get("command_name", "")).strip().lstrip("/")
        if name:
            return CommandVerdict("rewrite", command=name, args=str(result.get("raw_args", "")))
    return None
