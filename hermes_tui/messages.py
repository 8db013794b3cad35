"""App-wide Textual messages."""

from __future__ import annotations

from textual.message import Message

from hermes_gateway.events import GatewayEvent


class GatewayEventMessage(Message):
    """A gateway event, delivered to the screen by the bridge."""

    def __init__(self, event: GatewayEvent) -> None:
        super().__init__()
        self.event = event


class SessionSelected(Message):
    """The user picked a session in the Sessions pane."""

    def __init__(self, session_key: str, session_id: str | None = None) -> None:
        super().__init__()
        self.session_key = session_key
        self.session_id = session_id
