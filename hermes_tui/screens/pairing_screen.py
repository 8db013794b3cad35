"""The Pairing screen: who waits for approval, who is in, and the operator's controls.

Waiting requests can be approved or denied, approved users revoked, and someone who lost
their code approved by user id (or by the code they read out). The screen reads the
gateway's pairing state when it opens and whenever a pairing event arrives, so changes made
with ``hermes pairing`` from another terminal show up here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Select, Static

from hermes_gateway.access.pairing_cli import PLATFORMS
from hermes_gateway.text import ago, safe_line
from hermes_tui.messages import PairingChanged

if TYPE_CHECKING:
    from hermes_gateway.access.pairing import ApprovedUser, PendingPairing
    from hermes_gateway.access.pairing_gate import PairingGate

_SEP = "\x1f"


def _row_key(platform: str, user_id: str) -> str:
    return f"{platform}{_SEP}{user_id}"


def _split_key(key: str) -> tuple[str, str]:
    platform, _, user_id = key.partition(_SEP)
    return platform, user_id


def _cell(text: str | None, limit: int = 32) -> Text:
    """A table cell from a stranger's text: a Text, because DataTable reads a str as markup."""
    return Text(safe_line(text, limit))


class PairingScreen(Screen[None]):
    """Pending and approved users, with approve / deny / revoke."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f5", "reload", "Refresh"),
    ]

    def __init__(self, gate: PairingGate) -> None:
        super().__init__()
        self.gate = gate
        self.pending: dict[str, PendingPairing] = {}
        self.approved: dict[str, ApprovedUser] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="pairing-box"):
            yield Static("Pairing: who may DM the bot", id="pairing-title")
            yield Static("Waiting for approval", classes="pairing-section")
            yield DataTable(id="pairing-pending", cursor_type="row", zebra_stripes=True)
            yield Static(
                "Nobody is waiting. A stranger who DMs the bot gets a code; it shows here.",
                id="pairing-pending-empty",
                classes="empty",
            )
            with Horizontal(classes="pairing-actions"):
                yield Button("Approve", variant="success", id="pending-approve")
                yield Button("Deny", variant="error", id="pending-deny")
            yield Static("Approved users", classes="pairing-section")
            yield DataTable(id="pairing-approved", cursor_type="row", zebra_stripes=True)
            yield Static(
                "Nobody approved yet (allowlisted users need no pairing).",
                id="pairing-approved-empty",
                classes="empty",
            )
            with Horizontal(classes="pairing-actions"):
                yield Button("Revoke", variant="error", id="approved-revoke")
            yield Static(
                "Lost code? Approve by user id, or by the code they read out",
                classes="pairing-section",
            )
            with Horizontal(id="pairing-manual"):
                yield Select(
                    [(name, name) for name in PLATFORMS],
                    value=PLATFORMS[0],
                    allow_blank=False,
                    id="pairing-platform",
                )
                yield Input(placeholder="user id or code", id="pairing-target")
                yield Button("Approve user id", id="manual-user")
                yield Button("Approve code", id="manual-code")
            yield Static("", id="pairing-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        pending = self.query_one("#pairing-pending", DataTable)
        pending.add_columns("Platform", "Name", "User id", "Chat", "Code", "Asked", "Expires")
        approved = self.query_one("#pairing-approved", DataTable)
        approved.add_columns("Platform", "Name", "User id", "Approved", "By")
        self.reload()

    # --- data --------------------------------------------------------------------------

    @on(PairingChanged)
    def _on_pairing_changed(self, message: PairingChanged) -> None:
        self.reload()

    @work(group="pairing-reload", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """Re-read pending and approved users from the gateway's store."""
        pending = await self.gate.pending()
        approved = await self.gate.approved()
        self.show(pending, approved)

    def show(self, pending: list[PendingPairing], approved: list[ApprovedUser]) -> None:
        now = self.gate.manager.clock()
        table = self.query_one("#pairing-pending", DataTable)
        table.clear()
        self.pending = {}
        for p in pending:
            key = _row_key(p.platform, p.user_id)
            self.pending[key] = p
            code = self.gate.code_for(p.platform, p.user_id) or "(sent)"
            chat = p.chat_name or ("DM" if p.chat_id == p.user_id else p.chat_id)
            table.add_row(
                p.platform,
                _cell(p.user_name),
                _cell(p.user_id, 24),
                _cell(chat, 20),
                code,
                ago(now - p.created_at),
                f"in {max(1, round((p.expires_at - now) / 60))} min",
                key=key,
            )
        users = self.query_one("#pairing-approved", DataTable)
        users.clear()
        self.approved = {}
        for a in approved:
            key = _row_key(a.platform, a.user_id)
            self.approved[key] = a
            users.add_row(
                a.platform,
                _cell(a.user_name),
                _cell(a.user_id, 24),
                ago(now - a.approved_at),
                a.approved_by,
                key=key,
            )
        self.query_one("#pending-approve", Button).disabled = not self.pending
        self.query_one("#pending-deny", Button).disabled = not self.pending
        self.query_one("#approved-revoke", Button).disabled = not self.approved
        # Empty states in place of header-only tables.
        table.display = bool(self.pending)
        self.query_one("#pairing-pending-empty").display = not self.pending
        users.display = bool(self.approved)
        self.query_one("#pairing-approved-empty").display = not self.approved

    def _selected(self, table_id: str) -> tuple[str, str] | None:
        table = self.query_one(table_id, DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return _split_key(str(row_key.value))

    def say(self, text: str) -> None:
        self.query_one("#pairing-status", Static).update(text)

    # --- actions -----------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.reload()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id
        if button in ("pending-approve", "pending-deny"):
            picked = self._selected("#pairing-pending")
            if picked is not None:
                self._decide(button.removeprefix("pending-"), *picked)
        elif button == "approved-revoke":
            picked = self._selected("#pairing-approved")
            if picked is not None:
                self._decide("revoke", *picked)
        elif button in ("manual-user", "manual-code"):
            platform = str(self.query_one("#pairing-platform", Select).value)
            target = self.query_one("#pairing-target", Input).value.strip()
            if not target:
                self.say("Type a user id or a code first.")
                return
            self._decide("user" if button == "manual-user" else "code", platform, target)

    @work(group="pairing-action", exit_on_error=False)
    async def _decide(self, what: str, platform: str, target: str) -> None:
        from hermes_gateway.access.pairing import PairingError

        gate = self.gate
        try:
            if what in ("approve", "user"):
                user = await gate.approve_user(platform, target, by="tui")
                self.say(f"Approved {safe_line(user.user_name or user.user_id, 32)} on {platform}.")
            elif what == "code":
                user = await gate.approve_code(platform, target, by="tui")
                self.say(f"Approved {safe_line(user.user_name or user.user_id, 32)} on {platform}.")
            elif what == "deny":
                await gate.deny(platform, target, by="tui")
                self.say(f"Denied the request of {safe_line(target, 32)} on {platform}.")
            elif what == "revoke":
                await gate.revoke(platform, target, by="tui")
                self.say(f"Revoked {safe_line(target, 32)} on {platform}.")
        except PairingError as exc:
            self.say(f"Not approved: {exc}")
        if what in ("user", "code"):
            self.query_one("#pairing-target", Input).value = ""
        self.reload()
