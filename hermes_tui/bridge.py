"""The one place where gateway events become Textual messages.

A worker drains a bounded bus subscription and posts each event to the main screen. The
gateway never waits for the screen: if the screen falls behind, the bus drops the oldest
events for this subscriber and the screen reloads from the store on ``EventsDropped``.
"""

from __future__ import annotations

from textual.message_pump import MessagePump

from hermes_gateway.events import Subscription
from hermes_tui.messages import GatewayEventMessage


async def pump_events(sub: Subscription, target: MessagePump) -> None:
    """Forward events until the subscription closes (subscribe *before* starting the gateway)."""
    try:
        async for event in sub:
            target.post_message(GatewayEventMessage(event))
    finally:
        sub.close()
