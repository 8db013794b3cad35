"""App-level glue for pairing requests and tool approvals: notifications and dialogs.

The main screen routes the pairing and approval messages to the app, whose handlers call
:class:`AccessController`. It shows one dialog at a time (tool approvals
first: an agent is waiting on those), queues the rest, closes a dialog whose request was
answered elsewhere (a chat's /approve, the CLI, a timeout, expiry) and keeps an open Pairing
screen current.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.markup import escape

from hermes_gateway.access.events import (
    ApprovalRequested,
    ApprovalResolved,
    PairingRequested,
    PairingResolved,
)
from hermes_gateway.text import one_line
from hermes_tui.messages import PairingChanged

if TYPE_CHECKING:
    from textual.app import App

    from hermes_gateway.access.approvals import ApprovalManager
    from hermes_gateway.access.pairing_gate import PairingGate
    from hermes_tui.screens.approval_dialog import ApprovalDialog
    from hermes_tui.screens.pairing_dialog import PairingDialog

# The dialogs and the Pairing screen are imported when first shown: the app's first frame
# must not wait for widgets (DataTable, Select) that most sessions never open.


@dataclass
class _Ask:
    kind: str  # "approval" | "pairing"
    key: Any
    payload: Any


class AccessController:
    """Turns pairing and approval events into notifications and dialogs for ``app``.

    ``app.gateway`` is read on every use (it appears once the gateway has started).
    """

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.queue: deque[_Ask] = deque()
        self.current: tuple[_Ask, ApprovalDialog | PairingDialog] | None = None

    # --- where answers go --------------------------------------------------------------

    @property
    def approvals(self) -> ApprovalManager | None:
        gateway = getattr(self.app, "gateway", None)
        return getattr(gateway, "approvals", None)

    @property
    def pairing(self) -> PairingGate | None:
        gateway = getattr(self.app, "gateway", None)
        return getattr(gateway, "pairing", None)

    # --- events ------------------------------------------------------------------------

    def approval_requested(self, event: ApprovalRequested) -> None:
        self.app.notify(
            f"{escape(event.where)} wants to run "
            f"[b]{escape(one_line(event.command, 60))}[/b] ({escape(event.reason)}).",
            title="Approval needed",
            severity="warning",
            timeout=8,
        )
        self._remember(
            f"Approval needed: {one_line(event.command, 40)}",
            f"{event.where} ({event.reason})",
            "warning",
            self._show_next,
            key=("approval", event.request_id),
        )
        # Approvals go before pairing requests: an agent is waiting.
        position = sum(1 for a in self.queue if a.kind == "approval")
        self.queue.insert(position, _Ask("approval", event.request_id, event))
        self._show_next()

    def approval_resolved(self, event: ApprovalResolved) -> None:
        if event.auto:
            return
        self._drop("approval", event.request_id)
        if event.by not in ("operator", "interrupt"):
            word = "timed out (denied)" if event.decision == "timeout" else event.decision
            self.app.notify(
                f"[b]{escape(one_line(event.command, 60))}[/b]: {escape(word)}"
                f"{'' if event.by == 'timeout' else ' by ' + escape(event.by)}.",
                title="Approval answered",
                timeout=5,
            )

    def pairing_requested(self, event: PairingRequested) -> None:
        who = escape(event.user_name or event.user_id)
        self.app.notify(
            f"{who} on {escape(event.platform)} asks for access. "
            "[@click=app.open_pairing]Open Pairing[/] (Ctrl+O)",
            title="Pairing request",
            timeout=10,
        )
        self._remember(
            f"Pairing request: {event.user_name or event.user_id}",
            f"{event.platform}, chat {event.chat_name or event.chat_id}",
            "information",
            self.open_pairing_screen,
            key=("pairing", (event.platform, event.user_id)),
        )
        from hermes_tui.screens.pairing_dialog import PairingInfo

        info = PairingInfo.from_event(event)
        self.queue.append(_Ask("pairing", info.key, info))
        self._show_next()
        self._refresh_pairing_screen()

    def pairing_resolved(self, event: PairingResolved) -> None:
        self._drop("pairing", (event.platform, event.user_id))
        if event.by == "cli" and event.decision == "approved":
            who = escape(event.user_name or event.user_id)
            self.app.notify(f"{who} on {escape(event.platform)} was approved ({event.by}).")
        self._refresh_pairing_screen()

    def _remember(
        self, title: str, detail: str, severity: str, opener: Any, *, key: Any = None
    ) -> None:
        """Keep the request in the notification list (F9) after its toast fades."""
        center = self._center()
        if center is not None:
            from hermes_tui.notifications import Notification

            center.add(Notification(title, detail, severity, open=opener, key=key))  # type: ignore[arg-type]

    def _center(self) -> Any:
        return getattr(getattr(self.app, "main_screen", None), "notifications", None)

    # --- dialogs -----------------------------------------------------------------------

    def _drop(self, kind: str, key: Any) -> None:
        """A request was answered somewhere: forget it, close its dialog if it is open, and
        take it out of the F9 count."""
        center = self._center()
        if center is not None:
            center.resolve((kind, key))
        for ask in [a for a in self.queue if a.kind == kind and a.key == key]:
            self.queue.remove(ask)
        if self.current is not None:
            ask, dialog = self.current
            if ask.kind == kind and ask.key == key:
                dialog.close_answered()

    def _show_next(self) -> None:
        if self.current is not None or not self.queue:
            return
        from hermes_tui.screens.approval_dialog import ApprovalDialog
        from hermes_tui.screens.pairing_dialog import PairingDialog

        ask = self.queue.popleft()
        if ask.kind == "approval":
            dialog: ApprovalDialog | PairingDialog = ApprovalDialog(ask.payload)
        else:
            pairing = self.pairing
            clock = pairing.manager.clock if pairing is not None else None
            dialog = (
                PairingDialog(ask.payload, clock=clock) if clock else PairingDialog(ask.payload)
            )
        self.current = (ask, dialog)

        def answered(answer: str | None) -> None:
            self.current = None
            if answer is not None:
                self._answer(ask, answer)
            self.app.call_later(self._show_next)

        self.app.push_screen(dialog, answered)

    def _answer(self, ask: _Ask, answer: str) -> None:
        if ask.kind == "approval":
            approvals = self.approvals
            if approvals is not None and not approvals.resolve(ask.key, answer, by="operator"):
                self.app.notify("That request was already answered.", severity="warning")
            return
        if answer in ("approve", "deny"):
            self.app.run_worker(
                self._pairing_answer(ask.payload, answer),
                group="pairing-answer",
                exit_on_error=False,
            )

    async def _pairing_answer(self, info: Any, answer: str) -> None:
        from hermes_gateway.access.pairing import PairingError

        gate = self.pairing
        if gate is None:
            return
        who = escape(info.user_name or info.user_id)
        try:
            if answer == "approve":
                await gate.approve_user(info.platform, info.user_id, by="tui")
                self.app.notify(f"{who} can now talk to Hermes on {escape(info.platform)}.")
            else:
                await gate.deny(info.platform, info.user_id, by="tui")
                self.app.notify(f"Denied {who} on {escape(info.platform)}.")
        except PairingError as exc:
            self.app.notify(escape(str(exc)), severity="error")

    # --- the Pairing screen ------------------------------------------------------------

    def open_pairing_screen(self) -> None:
        gate = self.pairing
        if gate is None:
            self.app.notify("The gateway is still starting…", severity="warning")
            return
        from hermes_tui.screens.pairing_screen import PairingScreen

        if isinstance(self.app.screen, PairingScreen):
            return
        self.app.push_screen(PairingScreen(gate))

    def _refresh_pairing_screen(self) -> None:
        """Tell the open screens; a Pairing screen among them re-reads its lists."""
        for screen in self.app.screen_stack:
            screen.post_message(PairingChanged())
