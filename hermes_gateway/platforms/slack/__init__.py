"""Slack through slack-bolt in Socket Mode, inside our event loop.

Importing this package is cheap: the library is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "slack",
    lambda config: (
        bool(config.platforms.slack.token) and config.platforms.slack.enabled is not False
    ),
    "hermes_gateway.platforms.slack.adapter:SlackAdapter",
)
