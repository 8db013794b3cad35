"""SMS through Twilio: signed webhooks in, the REST API out (aiohttp).

Importing this package is cheap: aiohttp is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "sms",
    # The account SID alone enables it (as in Hermes Agent), so a missing auth token or number
    # is a clear failure naming the variable rather than a platform that never starts.
    lambda config: (
        bool(config.platforms.sms.account_sid) and config.platforms.sms.enabled is not False
    ),
    "hermes_gateway.platforms.sms.adapter:SmsAdapter",
)
