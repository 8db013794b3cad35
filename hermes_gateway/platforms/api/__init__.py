"""The OpenAI-compatible HTTP API and signed webhooks on one aiohttp server.

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
    from hermes_gateway.platforms.api.server import ApiServerAdapter

    return ApiServerAdapter(config, policy)


PLUGIN = PlatformPlugin(
    name="api_server",
    enabled=lambda config: config.platforms.api_server.enabled,
    create=_create,
    modules=("hermes_gateway.platforms.api.server",),
)
