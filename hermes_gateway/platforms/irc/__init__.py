"""IRC: channels and private messages over our own small asyncio client (no library).

Importing this package is cheap: the adapter is imported only when it is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "irc",
    # IRC_SERVER alone enables it (channels are optional: a bot may live in private messages).
    lambda config: bool(config.platforms.irc.server) and config.platforms.irc.enabled is not False,
    "hermes_gateway.platforms.irc.adapter:IrcAdapter",
)
