"""The OpenAI-compatible HTTP API and signed webhooks on one aiohttp server.

Importing this package is cheap: the library is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "api_server",
    lambda config: config.platforms.api_server.enabled,
    "hermes_gateway.platforms.api.server:ApiServerAdapter",
)
