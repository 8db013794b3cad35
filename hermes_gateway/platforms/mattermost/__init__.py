"""Mattermost through its REST API v4 and websocket (aiohttp), inside our event loop.

Importing this package is cheap: aiohttp is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "mattermost",
    # The token alone enables it, so a token without MATTERMOST_URL is a clear failure
    # naming the variable rather than a platform that silently never starts.
    lambda config: (
        bool(config.platforms.mattermost.token) and config.platforms.mattermost.enabled is not False
    ),
    "hermes_gateway.platforms.mattermost.adapter:MattermostAdapter",
)
