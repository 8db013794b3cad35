"""The dialog that asks the operator about a stranger who was sent a pairing code.

Everything shown comes from a person we do not know yet (their name, their chat's title), so
it is rendered as plain text, never as markup. The safe answer has the focus: a keystroke
meant for the prompt that lands here must not let anyone in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Static

from hermes_gateway.access.events import PairingRequested
from hermes_gateway.text import ago
from hermes_tui.screens.decision_dialog import DecisionDialog

PairingAnswer = str
"""``approve``, ``deny`` or ``later`` (None when closed because it was answered elsewhere)."""


@dataclass(frozen=True)
class PairingInfo:
    """What the dialog shows about one request."""

    platform: str
    user_id: str
    user_name: str | None
    chat_id: str
    chat_name: str | None
    code: str | None
    created_at: float

    @classmethod
    def from_event(cls, event: PairingRequested) -> PairingInfo:
        return cls(
            platform=event.platform,
            user_id=event.user_id,
            user_name=event.user_name,
            chat_id=event.chat_id,
            chat_name=event.chat_name,
            code=event.code or None,
            created_at=event.created_at,
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.user_id)


class FieldRow(Horizontal):
    """One ``label  value`` line; the value is plain text (it may come from a stranger)."""

    def __init__(self, label: str, value: str, *, value_id: str | None = None) -> None:
        super().__init__(classes="dialog-row")
        self._label, self._value, self._value_id = label, value, value_id

    def compose(self) -> ComposeResult:
        yield Static(self._label, classes="dialog-label", markup=False)
        yield Static(self._value, classes="dialog-value", id=self._value_id, markup=False)


class PairingDialog(DecisionDialog):  # answers: PairingAnswer | None
    """Approve / Deny / Later for one pairing request."""

    SAFE_BUTTON = "later"

    BINDINGS = [Binding("escape", "later", "Later")]

    def __init__(self, info: PairingInfo, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.info = info
        self.clock = clock

    def compose(self) -> ComposeResult:
        info = self.info
        chat = info.chat_name or (
            "direct message" if info.chat_id == info.user_id else info.chat_id
        )
        with Vertical(id="pairing-dialog", classes="access-dialog"):
            yield Static("Someone wants to talk to Hermes", classes="dialog-title")
            yield FieldRow("Platform", info.platform)
            yield FieldRow("Name", info.user_name or "(no name)")
            yield FieldRow("User id", info.user_id)
            yield FieldRow("Chat", f"{chat} ({info.chat_id})")
            yield FieldRow(
                "Code",
                info.code or "(sent before a restart: ask the user)",
                value_id="pairing-code",
            )
            yield FieldRow("Asked", ago(self.clock() - info.created_at))
            yield Static(
                "Approve only if you know who this is: ask them which code they received.",
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Approve", variant="success", id="approve")
                yield Button("Deny", variant="error", id="deny")
                yield Button("Later", id="later")
        yield Footer()  # the dialog's own keys, not the main screen's

    def action_later(self) -> None:
        self.dismiss("later")
