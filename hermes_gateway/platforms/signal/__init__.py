"""Signal through signal-cli-rest-api (bbernhard) in json-rpc mode: its websocket in, REST out.

Importing this package is cheap: aiohttp is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "signal",
    # Hermes Agent's rule: SIGNAL_HTTP_URL and SIGNAL_ACCOUNT together enable it.
    lambda config: (
        bool(config.platforms.signal.http_url and config.platforms.signal.account)
        and config.platforms.signal.enabled is not False
    ),
    "hermes_gateway.platforms.signal.adapter:SignalAdapter",
)
