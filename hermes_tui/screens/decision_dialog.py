"""What every "decide now" dialog (pairing, tool approval) shares.

The answer is the id of the button pressed. A request can also be answered elsewhere (a
chat's /approve, the CLI, a timeout, expiry): the dialog then closes itself, at once if it
is on top, or as soon as it comes back on top.
"""

from __future__ import annotations

from typing import ClassVar

from textual.screen import ModalScreen
from textual.widgets import Button


class DecisionDialog(ModalScreen[str | None]):
    SAFE_BUTTON: ClassVar[str] = ""
    """The button focused on open, so a stray Enter never grants anything."""

    def __init__(self) -> None:
        super().__init__()
        self.answered_elsewhere = False

    def on_mount(self) -> None:
        self.query_one(f"#{self.SAFE_BUTTON}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id)

    def close_answered(self) -> None:
        self.answered_elsewhere = True
        if self.is_current:
            self.dismiss(None)

    def on_screen_resume(self) -> None:
        if self.answered_elsewhere:
            self.dismiss(None)
