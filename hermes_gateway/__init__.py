"""Hermes gateway: the headless core.

Adapters turn platform updates into ``MessageEvent``s, the ``GatewayRunner`` decides what
happens to them, and everything observable is published as typed events on the ``EventBus``.
This package never imports Textual or ``hermes_tui``: the TUI is only one of its clients.
"""

__version__ = "0.1.0"
