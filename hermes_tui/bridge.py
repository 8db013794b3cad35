"""The one place where gateway events become Textual messages.

A worker drains a bounded bus subscription and posts each event, as the message class made
for its type (:func:`hermes_tui.gateway_messages.message_for`), to the main screen, which
routes it to the panes that handle it. The gateway never waits for the screen: if the screen
falls behind, the bus drops the oldest events for this subscriber and the screen reloads
from the store on ``EventsDropped``.
"""

from __future__ import annotations

from textual.message_pump import MessagePump

from hermes_gateway.events import Subscription
from hermes_tui.gateway_messages import message_for


async def pump_events(sub: Subscription, target: MessagePump) -> None:
    """Forward events until the subscription closes (subscribe *before* starting the gateway)."""
    try:
        async for event in sub:
            target.post_message(message_for(event))
    finally:
        sub.close()
