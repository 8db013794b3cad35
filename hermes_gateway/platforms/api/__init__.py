"""The OpenAI-compatible HTTP API and signed webhooks on one aiohttp server.

Importing this package is cheap: the library is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN", "WEBHOOK_PLUGIN"]

PLUGIN = lazy_plugin(
    "api_server",
    lambda config: config.platforms.api_server.enabled,
    "hermes_gateway.platforms.api.server:ApiServerAdapter",
)

WEBHOOK_PLUGIN = lazy_plugin(
    "webhook",
    lambda config: config.platforms.webhook.enabled,
    "hermes_gateway.platforms.api.webhook_server:WebhookServerAdapter",
)
"""Hermes Agent's separate webhook listener (WEBHOOK_ENABLED), on its own port."""
