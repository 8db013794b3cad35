"""The one place where gateway events become Textual messages.

A worker drains a bounded bus subscription and hands each event to the main screen's
``deliver``, which posts it, as the message class made for its type
(:func:`hermes_tui.gateway_messages.message_for`), to the panes that handle it. The gateway never waits for the screen: if the screen
falls behind, the bus drops the oldest events for this subscriber and the screen reloads
from the store on ``EventsDropped``.
"""

from __future__ import annotations

from collections.abc import Callable

from hermes_gateway.events import GatewayEvent, Subscription


async def pump_events(sub: Subscription, deliver: Callable[[GatewayEvent], None]) -> None:
    """Forward events until the subscription closes (subscribe *before* starting the gateway).

    ``deliver`` (the main screen's) posts each event's message to the panes that handle it.
    """
    try:
        async for event in sub:
            deliver(event)
    finally:
        sub.close()
