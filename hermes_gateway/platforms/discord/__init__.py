"""Discord through discord.py, inside our event loop.

Importing this package is cheap: the library is imported only when the adapter is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hermes_gateway.platforms.registry import PlatformPlugin

if TYPE_CHECKING:
    from hermes_gateway.access.policy import AccessPolicy
    from hermes_gateway.config import Config
    from hermes_gateway.platforms.base import PlatformAdapter

__all__ = ["PLUGIN"]


def _create(config: Config, policy: AccessPolicy) -> PlatformAdapter:
    from hermes_gateway.platforms.discord.adapter import DiscordAdapter

    return DiscordAdapter(config, policy)


PLUGIN = PlatformPlugin(
    name="discord",
    enabled=lambda config: bool(config.platforms.discord.token),
    create=_create,
    modules=("hermes_gateway.platforms.discord.adapter",),
)
