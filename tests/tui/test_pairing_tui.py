"""Pairing and tool approvals decided in the TUI, driven by Pilot, plus their SVG snapshots.

Why: the operator's dialogs are where access and dangerous actions are decided. The real app
runs its real gateway with the real Telegram adapter against FakeTelegram: a stranger's
code is approved in the dialog and their next message reaches the agent, revoking on the
Pairing screen shuts them out; dangerous commands from a Telegram chat wait for the dialog,
run when approved, do not run when denied, and count as denied when nobody answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, Static

import hermes_tui
from hermes_gateway import events as ev
from hermes_gateway.access.events import (
    ApprovalRequested,
    ApprovalResolved,
    PairingRequested,
    PairingResolved,
)
from hermes_gateway.access.pairing import PairingManager
from hermes_gateway.access.pairing_gate import APPROVED_TEXT, PairingGate
from hermes_gateway.config import Config
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.store import SessionStore
from hermes_tui.app import HermesApp
from hermes_tui.screens.approval_dialog import ApprovalDialog
from hermes_tui.screens.pairing_dialog import PairingDialog, PairingInfo
from hermes_tui.screens.pairing_screen import PairingScreen
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import Recorder
from tests.integration.pairing_harness import FRIEND, STRANGER, pairing_config, user_texts
from tests.tui.conftest import ready, wait_until

SIZE = (120, 36)


async def _text_of(pilot, selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())


async def shown(pilot, kind: type, timeout: float = 10) -> Any:
    """Wait until a ``kind`` screen is on top and composed (its buttons can be clicked)."""
    app = pilot.app
    await wait_until(
        pilot, lambda: isinstance(app.screen, kind) and bool(app.screen.query("Button")), timeout
    )
    await pilot.pause()
    return app.screen


# --- Pilot: pairing through Telegram, decided in the dialog -------------------------------


async def test_a_stranger_is_let_in_from_the_dialog_and_shut_out_from_the_pairing_screen(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeTelegram() as tg:
        app = HermesApp(pairing_config(hermes_home, fake_openai, tg), discover_servers=False)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            tg.inject_message(STRANGER, "hello?", user_id=STRANGER, first_name="Mallory")
            dialog = await shown(pilot, PairingDialog)
            await tg.wait_for(lambda: bool(tg.messages_in(STRANGER)))
            sent = tg.messages_in(STRANGER)[0].plain_text
            assert dialog.info.code is not None and f"code: {dialog.info.code}" in sent
            assert await _text_of(pilot, "#pairing-code") == dialog.info.code
            assert fake_openai.requests == []

            await pilot.click("#approve")
            await tg.wait_for(
                lambda: APPROVED_TEXT in [m.plain_text for m in tg.messages_in(STRANGER)]
            )
            assert not isinstance(app.screen, PairingDialog)
            tg.inject_message(STRANGER, "thanks!", user_id=STRANGER)
            await wait_until(pilot, lambda: len(fake_openai.requests) == 1, timeout=5)
            assert user_texts(fake_openai) == ["thanks!"]

            await pilot.press("ctrl+o")
            screen = await shown(pilot, PairingScreen)
            table = screen.query_one("#pairing-approved", DataTable)
            await wait_until(pilot, lambda: table.row_count == 1)
            assert [str(c) for c in table.get_row_at(0)][:3] == ["telegram", "Mallory", "991"]
            await pilot.click("#approved-revoke")
            await wait_until(pilot, lambda: table.row_count == 0)
            assert await app.gateway.pairing.approved() == []  # type: ignore[union-attr]
            await app.gateway.runner.wait_idle()  # type: ignore[union-attr]

            tg.inject_message(STRANGER, "still here?", user_id=STRANGER)
            await tg.wait_for(
                lambda: "No new pairing code" in tg.messages_in(STRANGER)[-1].plain_text
            )
            assert len(fake_openai.requests) == 1

            # They lost nothing this time, but the operator can let them in by id alone.
            screen.query_one("#pairing-target", Input).value = str(STRANGER)
            await pilot.click("#manual-user")
            await wait_until(pilot, lambda: table.row_count == 1)
            await tg.wait_for(lambda: tg.messages_in(STRANGER)[-1].plain_text == APPROVED_TEXT)
            await pilot.press("escape")
            assert not isinstance(app.screen, PairingScreen)


# --- Pilot: dangerous commands from a Telegram chat ---------------------------------------


def rm_call(target: Path) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": f"rm -rf {target}"})])


async def test_dangerous_commands_from_telegram_wait_for_the_dialog(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    victims = [hermes_home / name for name in ("approved", "denied", "unanswered")]
    for victim in victims:
        victim.mkdir()
    fake_openai.enqueue(
        rm_call(victims[0]),
        ScriptedReply(text="deleted"),
        rm_call(victims[1]),
        ScriptedReply(text="kept"),
        rm_call(victims[2]),
        ScriptedReply(text="nobody answered"),
    )
    async with FakeTelegram() as tg:
        config = pairing_config(hermes_home, fake_openai, tg, TELEGRAM_ALLOWED_USERS=str(FRIEND))
        config.gateway.approval_timeout = 30
        config.platforms.telegram.approvals = "dangerous"  # the danger check's own dialog
        app = HermesApp(config, discover_servers=False)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            gateway = app.gateway
            assert gateway is not None and gateway.runner is not None
            rec = Recorder(gateway.bus)

            async def ask(text: str) -> ApprovalDialog:
                tg.inject_message(FRIEND, text, user_id=FRIEND, first_name="Ada")
                return await shown(pilot, ApprovalDialog)

            async def finished(turns: int) -> None:
                await wait_until(pilot, lambda: len(rec.of(ev.TurnFinished)) == turns, timeout=10)

            dialog = await ask("delete the first folder")
            assert dialog.request.command == f"rm -rf {victims[0]}"
            assert dialog.request.where == "Ada · telegram DM"
            await tg.wait_for(
                lambda: any("needs approval" in m.plain_text for m in tg.messages_in(FRIEND))
            )
            assert victims[0].exists()
            await pilot.click("#once")
            await finished(1)
            assert not victims[0].exists()

            dialog = await ask("delete the second folder")
            await pilot.click("#deny")
            await finished(2)
            assert victims[1].exists()

            gateway.approvals.timeout = 0.3  # type: ignore[union-attr]
            await ask("delete the third folder")
            await finished(3)
            assert not isinstance(app.screen, ApprovalDialog)  # closed by the timeout
            assert victims[2].exists()
            told = [
                m["content"] for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool"
            ]
            assert told[-1].startswith("no answer from the operator within 0.3 s")
            decisions = [(e.decision, e.by) for e in rec.of(ApprovalResolved)]
            assert decisions == [("once", "operator"), ("deny", "operator"), ("timeout", "timeout")]
            chat = [m.plain_text for m in tg.messages_in(FRIEND)]
            assert any(t.startswith("⌛ No answer in time") for t in chat)
            rec.close()


def _rows(screen: Any, selector: str) -> int:
    tables = screen.query(selector)
    return tables.first(DataTable).row_count if tables else -1


# --- SVG snapshots -------------------------------------------------------------------------

T0 = 1_800_000_000.0
TCSS = Path(hermes_tui.__file__).parent / "hermes.tcss"


class Host(App[None]):
    """Just the dialog or screen under test, on the app's stylesheet (no main screen behind
    it, so the snapshot changes only when the dialog does)."""

    CSS_PATH = TCSS

    def __init__(self) -> None:
        super().__init__()
        self.stores: list[SessionStore] = []

    def compose(self) -> ComposeResult:
        yield Static("")

    async def on_unmount(self) -> None:
        for store in self.stores:
            await store.close()


def test_pairing_dialog_snapshot(snap_compare) -> None:
    info = PairingInfo(
        platform="telegram",
        user_id="991",
        user_name="Mallory",
        chat_id="991",
        chat_name=None,
        code="K7QX2MZP",
        created_at=T0,
    )
    app = Host()

    async def run_before(pilot) -> None:
        app.push_screen(PairingDialog(info, clock=lambda: T0 + 125))
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_approval_dialog_snapshot(snap_compare) -> None:
    request = ApprovalRequested(
        request_id="a1b2c3",
        session_key="telegram:dm:42",
        session_id="20260101-000000-abcd",
        platform="telegram",
        where="Ada · telegram DM",
        tool="terminal",
        command="rm -rf ~/projects/old-site && sudo reboot",
        reason="recursive delete (rm -r)",
        timeout=300,
        remote=True,
    )
    app = Host()

    async def run_before(pilot) -> None:
        app.push_screen(ApprovalDialog(request))
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


@pytest.fixture
def snapshot_db(hermes_home: Path) -> Path:
    """The test's own database: no state shared with another test or a parallel run."""
    return hermes_home / "hermes_tui.db"


def test_pairing_screen_snapshot(snap_compare, snapshot_db: Path) -> None:
    now = [T0]
    codes = iter(["K7QX2MZP", "H3WN8RTA"])
    app = Host()

    async def run_before(pilot) -> None:
        store = await SessionStore.open(snapshot_db)
        app.stores.append(store)
        manager = PairingManager(store, clock=lambda: now[0], new_code=lambda: next(codes))
        gate = PairingGate(Config(), manager, ev.EventBus())
        await manager.approve_user("discord", "310987654321", by="cli")
        now[0] += 3 * 3600
        await gate.approve_user("telegram", "42", by="tui")
        for uid, name in (("991", "Mallory"), ("555", "[b]eve[/b] [@click=app.quit]x[/]")):
            src = SessionSource("telegram", uid, "dm", user_id=uid, user_name=name)
            await gate.on_denied(MessageEvent(text="hi", source=src))
            now[0] += 240
        app.push_screen(PairingScreen(gate))
        screen = app.screen
        await wait_until(pilot, lambda: _rows(screen, "#pairing-pending") == 2)
        await wait_until(pilot, lambda: _rows(screen, "#pairing-approved") == 2)
        # Column widths follow the rows on the tables' next refresh: let it happen (under
        # load it came after the shot, and the headers were narrower).
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_pairing_request_stays_in_notifications(hermes_home, fake_openai):
    """The request is listed under F9 after its toast, and opening it shows the Pairing screen."""
    from hermes_tui.app import HermesApp
    from tests.conftest import make_config
    from tests.tui.conftest import ready, wait_until

    app = HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        app.gateway.bus.publish(
            PairingRequested(
                platform="telegram",
                user_id="55",
                user_name="Stranger",
                chat_id="55",
                chat_name=None,
                created_at=0.0,
                expires_at=3600.0,
                code="ABCDEFGH",
            )
        )
        center = app.main_screen.notifications
        await wait_until(pilot, lambda: any("Stranger" in n.title for n in center.items))
        item = next(n for n in center.items if "Stranger" in n.title)
        assert item.open is not None and "telegram" in item.detail
        assert center.unseen >= 1
        # Answered elsewhere (the CLI): it leaves the F9 count, and says so.
        app.gateway.bus.publish(
            PairingResolved(platform="telegram", user_id="55", decision="approved", by="cli")
        )
        await wait_until(pilot, lambda: item.seen)
        assert "(answered)" in item.title
        assert center.unseen == sum(1 for n in center.items if not n.seen)


async def test_empty_pairing_tables_say_so_and_fill_when_a_request_comes(
    snapshot_db: Path,
) -> None:
    """No header-only tables: each empty list says what would be there; a request replaces
    the line with the table."""
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        store = await SessionStore.open(snapshot_db)
        app.stores.append(store)
        manager = PairingManager(store, clock=lambda: T0, new_code=lambda: "K7QX2MZP")
        gate = PairingGate(Config(), manager, ev.EventBus())
        app.push_screen(PairingScreen(gate))
        screen = app.screen
        await wait_until(pilot, lambda: bool(screen.query("#pairing-pending-empty")))
        # The first reload hid the header-only table and left the line that says why.
        await wait_until(pilot, lambda: not screen.query_one("#pairing-pending").display)
        empty_pending = screen.query_one("#pairing-pending-empty")
        assert empty_pending.display
        assert screen.query_one("#pairing-approved-empty").display
        src = SessionSource("telegram", "991", "dm", user_id="991", user_name="Mallory")
        await gate.on_denied(MessageEvent(text="hi", source=src))
        screen.reload()
        await wait_until(pilot, lambda: _rows(screen, "#pairing-pending") == 1)
        assert screen.query_one("#pairing-pending").display and not empty_pending.display
        assert screen.query_one("#pairing-approved-empty").display
