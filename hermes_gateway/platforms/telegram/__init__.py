"""Telegram through python-telegram-bot, inside our event loop.

Importing this package is cheap: the library is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "telegram",
    lambda config: (
        bool(config.platforms.telegram.token) and config.platforms.telegram.enabled is not False
    ),
    "hermes_gateway.platforms.telegram.adapter:TelegramAdapter",
)
