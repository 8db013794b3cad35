"""WhatsApp through Meta's Cloud API: signed webhooks in, the Graph API out (aiohttp).

Importing this package is cheap: aiohttp is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "whatsapp",
    # Hermes Agent's rule: the phone number id and the access token enable it; a missing app
    # secret is then a clear failure naming the variable.
    lambda config: (
        bool(config.platforms.whatsapp.phone_number_id and config.platforms.whatsapp.token)
        and config.platforms.whatsapp.enabled is not False
    ),
    "hermes_gateway.platforms.whatsapp.adapter:WhatsAppAdapter",
)
