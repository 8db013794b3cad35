"""Platforms are plugins: found through the ``hermes.platforms`` entry-point group.

Each platform package exposes one :class:`PlatformPlugin`: whether the configuration enables
it, the modules to import ahead of time (off the event loop), and a factory for its adapter.
A third-party package adds a platform by declaring an entry point in that group, so a new
platform is one package and no edit to the core. The built-in ones are declared the same way
in our own pyproject, and listed here too so that a source checkout that was never installed
still finds them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hermes_gateway.access.policy import AccessPolicy
    from hermes_gateway.config import Config
    from hermes_gateway.platforms.base import PlatformAdapter

__all__ = [
    "ENTRY_POINT_GROUP",
    "PlatformPlugin",
    "enabled_adapters",
    "lazy_plugin",
    "plugins",
    "preload",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hermes.platforms"
BUILTIN = {
    "telegram": "hermes_gateway.platforms.telegram:PLUGIN",
    "discord": "hermes_gateway.platforms.discord:PLUGIN",
    "slack": "hermes_gateway.platforms.slack:PLUGIN",
    "mattermost": "hermes_gateway.platforms.mattermost:PLUGIN",
    "sms": "hermes_gateway.platforms.sms:PLUGIN",
    "whatsapp": "hermes_gateway.platforms.whatsapp:PLUGIN",
    "signal": "hermes_gateway.platforms.signal:PLUGIN",
    "email": "hermes_gateway.platforms.email:PLUGIN",
    "irc": "hermes_gateway.platforms.irc:PLUGIN",
    "homeassistant": "hermes_gateway.platforms.homeassistant:PLUGIN",
    "api_server": "hermes_gateway.platforms.api:PLUGIN",
    "webhook": "hermes_gateway.platforms.api:WEBHOOK_PLUGIN",
}


@dataclass(frozen=True)
class PlatformPlugin:
    """How the gateway finds, enables and builds one platform (cheap to import)."""

    name: str
    enabled: Callable[[Config], bool]
    create: Callable[[Config, AccessPolicy], PlatformAdapter]
    """Builds the adapter; imports the platform's heavy library only when called."""
    modules: tuple[str, ...] = field(default=())
    """Modules worth importing in a worker thread before ``create`` (slow imports)."""


def lazy_plugin(name: str, enabled: Callable[[Config], bool], adapter: str) -> PlatformPlugin:
    """A plugin whose adapter class (``"module:Class"``) is imported only when it is built."""
    module, _, cls = adapter.partition(":")

    def create(config: Config, policy: AccessPolicy) -> PlatformAdapter:
        factory = getattr(importlib.import_module(module), cls)
        adapter_obj: PlatformAdapter = factory(config, policy)
        return adapter_obj

    return PlatformPlugin(name=name, enabled=enabled, create=create, modules=(module,))


def _load(spec: str) -> PlatformPlugin | None:
    module, _, attr = spec.partition(":")
    try:
        plugin = getattr(importlib.import_module(module), attr)
    except Exception:
        log.exception("platform plugin %s could not be loaded", spec)
        return None
    if not isinstance(plugin, PlatformPlugin):
        log.error("platform plugin %s is not a PlatformPlugin", spec)
        return None
    return plugin


def plugins() -> dict[str, PlatformPlugin]:
    """Every known platform plugin by name: built-in ones, then installed packages'."""
    specs = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs[ep.name] = ep.value
    found: dict[str, PlatformPlugin] = {}
    for name, spec in specs.items():
        plugin = _load(spec)
        if plugin is not None:
            found[name] = plugin
    return found


def enabled_adapters(config: Config, policy: AccessPolicy) -> list[PlatformAdapter]:
    """The adapters of the platforms the configuration enables, in a stable order."""
    adapters: list[PlatformAdapter] = []
    for plugin in plugins().values():
        if plugin.enabled(config):
            adapters.append(plugin.create(config, policy))
    return adapters


def preload(config: Config) -> None:
    """Import the enabled platforms' modules (and their libraries) ahead of start().

    Meant for a worker thread: python-telegram-bot, discord.py and aiohttp take about a
    second to import, which on the event loop would freeze a screen that is already up.
    """
    for plugin in plugins().values():
        if plugin.enabled(config):
            for module in plugin.modules:
                importlib.import_module(module)
