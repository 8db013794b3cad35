"""Panes without a gateway: mount one in a tiny host app, post its messages, read it back."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widget import Widget

from hermes_gateway import events as ev
from hermes_tui import gateway_messages as gm
from hermes_tui.widgets.platforms_pane import PlatformsPane
from hermes_tui.widgets.sessions_pane import SessionsPane
from hermes_tui.widgets.tool_progress import ToolProgressPane, ToolRow


class Host(App[None]):
    def __init__(self, pane: Widget) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane


async def test_platforms_pane_shows_status_and_counters():
    pane = PlatformsPane()
    async with Host(pane).run_test() as pilot:
        pane.post_message(gm.message_for(ev.PlatformStatus(platform="chat", state="connected")))
        pane.post_message(gm.message_for(ev.PlatformCounters(platform="chat", received=3, sent=2)))
        await pilot.pause()
        assert pane.plain == "chat connected ↓3 ↑2"


async def test_tool_pane_shows_only_the_shown_sessions_calls():
    pane = ToolProgressPane()
    async with Host(pane).run_test() as pilot:
        pane.show("local:1")
        for key, call in (("local:1", "a"), ("other:2", "b")):
            pane.post_message(
                gm.message_for(
                    ev.ToolStarted(
                        session_key=key, turn_id=1, call_id=call, name="shell", preview="ls"
                    )
                )
            )
        pane.post_message(
            gm.message_for(
                ev.ToolFinished(
                    session_key="local:1",
                    turn_id=1,
                    call_id="a",
                    name="shell",
                    ok=True,
                    duration=0.5,
                    summary="3 files",
                )
            )
        )
        await pilot.pause()
        rows = [r for r in pane.query(ToolRow) if r.display]
        assert [r.call_id for r in rows] == ["a"]
        assert rows[0].done and rows[0].summary == "3 files"
        pane.show("other:2")  # the other chat's call was kept while it was not shown
        await pilot.pause()
        assert [r.call_id for r in pane.query(ToolRow) if r.display] == ["b"]
        assert not pane.query_one("#tools-empty").display
        pane.show("local:3")
        assert pane.query_one("#tools-empty").display


async def test_sessions_pane_follows_session_and_turn_messages():
    pane = SessionsPane()
    async with Host(pane).run_test() as pilot:
        pane.post_message(
            gm.message_for(
                ev.SessionChanged(
                    session_key="chat:dm:42",
                    session_id="s1",
                    reason="started",
                    platform="chat",
                    display_name="Ann",
                )
            )
        )
        pane.post_message(
            gm.message_for(
                ev.TurnStarted(session_key="chat:dm:42", session_id="s1", turn_id=1, model="m")
            )
        )
        await pilot.pause()
        row = pane.rows["chat:dm:42"]
        assert row.name == "Ann" and row.streaming and row.unread
        pane.post_message(
            gm.message_for(
                ev.TurnFinished(session_key="chat:dm:42", session_id="s1", turn_id=1, text="hello")
            )
        )
        await pilot.pause()
        assert not row.streaming and row.preview == "hello"


def test_every_event_type_has_its_message_and_unknown_ones_a_fallback():
    assert type(gm.message_for(ev.LoopLag(lag=1.0))) is gm.LoopLag
    assert type(gm.message_for(ev.GatewayEvent())) is gm.GatewayMessage


def test_gateway_messages_do_not_bubble_back_to_the_screen():
    assert not any(cls.bubble for cls in gm.MESSAGE_FOR.values())


async def test_sessions_pane_names_whose_session_it_is_in_a_group():
    pane = SessionsPane()
    async with Host(pane).run_test() as pilot:
        for key, name in [
            ("telegram:group:-100", "Team"),  # the group's shared session from before
            ("telegram:group:-100:@7", "Team · Ann"),
            ("telegram:group:-100:@8", "Team · Ben"),
        ]:
            pane.post_message(
                gm.message_for(
                    ev.SessionChanged(
                        session_key=key,
                        session_id=key[-2:],
                        reason="started",
                        platform="telegram",
                        display_name=name,
                    )
                )
            )
        await pilot.pause()
        shown = [str(pane.get_option_at_index(i).prompt) for i in range(pane.option_count)]
        assert sum("Team · Ann" in s for s in shown) == 1
        assert sum("Team · Ben" in s for s in shown) == 1
        assert sum(s.strip().startswith("Team") and "·" not in s for s in shown) == 1
