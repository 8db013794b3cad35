"""Email through IMAP (IDLE, else polling) and SMTP, inside our event loop.

Importing this package is cheap: aioimaplib and aiosmtplib are imported only when the
adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "email",
    # The address alone enables it, so an address without EMAIL_PASSWORD or a host is one
    # clear failure naming the variable rather than a platform that silently never starts.
    lambda config: (
        bool(config.platforms.email.address.strip()) and config.platforms.email.enabled is not False
    ),
    "hermes_gateway.platforms.email.adapter:EmailAdapter",
)
