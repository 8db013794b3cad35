"""App-wide Textual messages (gateway events have theirs in :mod:`hermes_tui.gateway_messages`)."""

from __future__ import annotations

from textual.message import Message


class SessionSelected(Message):
    """The user picked a session in the Sessions pane."""

    def __init__(self, session_key: str, session_id: str | None = None) -> None:
        super().__init__()
        self.session_key = session_key
        self.session_id = session_id


class SearchRequested(Message):
    """Open the search screen, prefilled with ``query`` (the /search command, a binding)."""

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.query = query


class QuitRequested(Message):
    """Stop the gateway and leave (the /quit command)."""


class PairingChanged(Message, bubble=False):
    """Pairing requests or approvals changed: an open Pairing screen re-reads them."""
