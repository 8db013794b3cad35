"""Home Assistant: a conversation agent over HA's websocket API, answers through ``notify``.

Importing this package is cheap: aiohttp is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "homeassistant",
    # HASS_TOKEN alone enables it, as in Hermes Agent (HASS_URL has a default).
    lambda config: (
        bool(config.platforms.homeassistant.token)
        and config.platforms.homeassistant.enabled is not False
    ),
    "hermes_gateway.platforms.homeassistant.adapter:HomeAssistantAdapter",
)
