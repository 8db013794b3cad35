"""Telegram through python-telegram-bot, inside our event loop.

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
    from hermes_gateway.platforms.telegram.adapter import TelegramAdapter

    return TelegramAdapter(config, policy)


PLUGIN = PlatformPlugin(
    name="telegram",
    enabled=lambda config: bool(config.platforms.telegram.token),
    create=_create,
    modules=("hermes_gateway.platforms.telegram.adapter",),
)
