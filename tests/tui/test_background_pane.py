"""The Background pane: live in the real app (Pilot, real gateway, scripted model) and an SVG
snapshot of the pane alone, fed the events a gateway publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Vertical

import hermes_tui
from hermes_gateway.background.events import BackgroundRunChanged
from hermes_tui import gateway_messages as gm
from hermes_tui.app import HermesApp
from hermes_tui.widgets.background_pane import BackgroundPane
from hermes_tui.widgets.conversation import NoticeLine
from tests.conftest import make_config
from tests.fakes.openai_server import ScriptedReply, ToolCallSpec, echo_reply
from tests.tui.conftest import ready, wait_until

SIZE = (120, 36)


def _last_user(body: dict[str, Any]) -> Any:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def row_text(pane: BackgroundPane, index: int = 0) -> str:
    return str(pane.rows.get_option_at_index(index).prompt)


async def test_pane_lists_runs_with_progress_and_opens_a_finished_ones_session(
    hermes_home, fake_openai
):
    def reply(body: dict[str, Any]) -> ScriptedReply:
        last = _last_user(body)
        if last == "survey the logs" and not any(m["role"] == "tool" for m in body["messages"]):
            return ScriptedReply(tool_calls=[ToolCallSpec("search_files", {"pattern": "x"})])
        if last == "survey the logs":
            return ScriptedReply(text="Nothing alarming in the logs.", hold_at=[0])
        return echo_reply(body)

    fake_openai.default = reply
    app = HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        pane = screen.query_one(BackgroundPane)
        assert pane.has_class("-none") and pane.styles.display == "none"  # no run yet
        local_key = screen.current_key

        screen.send_text("/background survey the logs")
        await wait_until(pilot, lambda: fake_openai.held == 1, timeout=10)
        await pilot.pause()
        assert pane.styles.display == "block"
        text = row_text(pane)
        assert text.startswith("▶ survey the logs") and "running · 1 step" in text
        assert "search_files" in text
        # The terminal's own chat goes on meanwhile: its turn reaches the model and ends.
        screen.send_text("still here?")
        assert app.gateway is not None and app.gateway.runner is not None
        assert local_key is not None
        runner = app.gateway.runner
        await wait_until(
            pilot,
            lambda: (
                any(_last_user(r) == "still here?" for r in fake_openai.requests)
                and not runner.sessions[local_key].busy
            ),
        )
        assert fake_openai.held == 1

        fake_openai.release()
        await wait_until(pilot, lambda: "done" in row_text(pane), timeout=10)
        await pilot.pause()
        text = row_text(pane)
        assert text.startswith("✓ survey the logs") and "↳ Nothing alarming" in text
        assert "done · 1 step · terminal" in text
        # The result is in the terminal's conversation too.
        await wait_until(
            pilot,
            lambda: any(
                "Nothing alarming in the logs." in str(n.render()) for n in screen.query(NoticeLine)
            ),
        )

        # Enter opens the run's own session: its transcript, not the terminal's chat.
        (run,) = pane.runs.values()
        pane.rows.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.current_key == run.session_key)
        assert run.session_key != local_key and run.session_key.startswith("background:")


class PaneApp(App[None]):
    """The pane alone in the sidebar, styled by the app's stylesheet."""

    CSS_PATH = str(Path(hermes_tui.__file__).parent / "hermes.tcss")

    def compose(self) -> ComposeResult:
        with Vertical(id="sidebar"):
            yield BackgroundPane(id="background")


T0 = 1_780_000_000.0


def run_event(run_id: str, state: str, prompt: str, **kw: Any) -> BackgroundRunChanged:
    return BackgroundRunChanged(
        run_id=run_id,
        origin_key=kw.pop("origin_key", "telegram:dm:42"),
        session_key=f"background:dm:{run_id}",
        state=state,  # type: ignore[arg-type]
        prompt=prompt,
        started_at=kw.pop("started_at", T0),
        **kw,
    )


EVENTS = [
    run_event("bg_1", "started", "summarise the release notes", ts=T0),
    run_event("bg_2", "started", "check the backups", ts=T0 + 1, origin_key="local:dm:operator"),
    run_event(
        "bg_2",
        "finished",
        "check the backups",
        ts=T0 + 20,
        steps=3,
        origin_key="local:dm:operator",
        result="✅ Background task done: “check the backups”\n\nAll 4 backups are fresh.",
    ),
    run_event("bg_3", "failed", "translate the FAQ", ts=T0 + 30, result="❌ failed\n\nHTTP 500"),
    run_event(
        "bg_1", "progress", "summarise the release notes", ts=T0 + 40, steps=2, tool="read_file"
    ),
    run_event("bg_4", "interrupted", "count the stars", ts=T0 + 50, result="⚠ interrupted"),
]


async def test_pane_keeps_each_runs_latest_state_running_first():
    app = PaneApp()
    async with app.run_test() as pilot:
        pane = app.query_one(BackgroundPane)
        pane.clock = lambda: T0 + 75
        assert pane.styles.display == "none"
        for event in EVENTS:
            pane.post_message(gm.message_for(event))
        await pilot.pause()
        assert pane.styles.display == "block"
        rows = [str(pane.rows.get_option_at_index(i).prompt) for i in range(pane.rows.option_count)]
        assert [r.split("\n")[0] for r in rows] == [
            "▶ summarise the release notes",
            "⚠ count the stars",
            "✗ translate the FAQ",
            "✓ check the backups",
        ]
        assert "running · 2 steps · 1m 15s" in rows[0] and "⚙ read_file" in rows[0]
        assert "↳ All 4 backups are fresh." in rows[3]


def test_background_pane_snapshot(snap_compare):
    app = PaneApp()

    async def run_before(pilot) -> None:
        pane = app.query_one(BackgroundPane)
        pane.clock = lambda: T0 + 75
        for event in EVENTS:
            pane.post_message(gm.message_for(event))
        await pilot.pause()
        app.clear_notifications()  # the toasts are the app's, not the pane's
        await pilot.pause()

    assert snap_compare(app, terminal_size=(40, 16), run_before=run_before)
