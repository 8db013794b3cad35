"""Hermes Agent's webhook listener: signed webhooks on a port of their own, without the API.

Hermes users turn it on with ``WEBHOOK_ENABLED`` (``WEBHOOK_PORT``, default 8644;
``WEBHOOK_SECRET`` for routes without their own secret) and list routes under
``platforms.webhook.routes`` (or Hermes' ``platforms.webhook.extra.routes``). It is the API
server's webhook endpoint and limits, served alone: ``GET /health`` and
``POST /webhooks/<route>``; no OpenAI endpoints, so no API key is needed (each route is
verified by its HMAC signature).
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import ApiServerConfig, Config
from hermes_gateway.platforms.api.server import ApiServerAdapter
from hermes_gateway.platforms.api.webhook import WebhookRoutes

__all__ = ["WebhookServerAdapter", "webhook_settings"]


def webhook_settings(config: Config) -> ApiServerConfig:
    """The API server's limits with the webhook listener's address and routes."""
    hook = config.platforms.webhook
    routes = {
        name: route if route.secret else dataclasses.replace(route, secret=hook.secret)
        for name, route in hook.routes.items()
    }
    return dataclasses.replace(
        config.platforms.api_server,
        enabled=hook.enabled,
        host=hook.host,
        port=hook.port,
        key="",
        webhooks=routes,
    )


class WebhookServerAdapter(ApiServerAdapter):
    """The webhook routes of ``platforms.webhook`` on their own listener."""

    name = "webhook"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__(config, policy)
        self.settings = webhook_settings(config)
        self.webhooks = WebhookRoutes(self, config_key="platforms.webhook.routes")
        self._key = b""

    def _check_key(self) -> None:
        """No key: only signed webhook routes are served here."""

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)
        app.router.add_post("/webhooks/{route}", self._guarded(self.webhooks.handle))
