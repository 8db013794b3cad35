"""Discord through discord.py, inside our event loop.

Importing this package is cheap: the library is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "discord",
    lambda config: (
        bool(config.platforms.discord.token) and config.platforms.discord.enabled is not False
    ),
    "hermes_gateway.platforms.discord.adapter:DiscordAdapter",
)
