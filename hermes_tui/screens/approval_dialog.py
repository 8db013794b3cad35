"""The dialog that asks the operator whether a tool call may run.

It shows the exact command (plain text, scrollable when long), which rule asked, and who
asked from where. Escape and the initial focus both mean "deny": the agent waits on this
answer, and the answer that can be taken back later is no.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Static

from hermes_gateway.access.events import ApprovalRequested
from hermes_tui.screens.decision_dialog import DecisionDialog
from hermes_tui.screens.pairing_dialog import FieldRow

ApprovalAnswer = str
"""``once``, ``session`` or ``deny`` (None when closed because it was answered elsewhere)."""


def timeout_text(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class ApprovalDialog(DecisionDialog):  # answers: ApprovalAnswer | None
    """Approve once / Approve for this session / Deny for one waiting tool call."""

    SAFE_BUTTON = "deny"

    BINDINGS = [Binding("escape", "deny", "Deny")]

    def __init__(self, request: ApprovalRequested) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        req = self.request
        with Vertical(id="approval-dialog", classes="access-dialog"):
            yield Static("The agent wants to run this", classes="dialog-title")
            with VerticalScroll(id="approval-command"):
                yield Static(req.command, markup=False)
            yield FieldRow("From", req.where)
            yield FieldRow("Tool", req.tool)
            yield FieldRow("Why asked", req.reason)
            remote = " The chat may also answer with /approve or /deny." if req.remote else ""
            yield Static(
                f"No answer within {timeout_text(req.timeout)} means deny.{remote}",
                classes="dialog-hint",
                markup=False,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Approve once", variant="success", id="once")
                yield Button("Approve for this session", variant="warning", id="session")
                yield Button("Deny", variant="error", id="deny")
        yield Footer()  # the dialog's own keys, not the main screen's

    def action_deny(self) -> None:
        self.dismiss("deny")
