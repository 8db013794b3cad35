"""The control room: remote chats stream live, the operator steps in, search jumps."""

from __future__ import annotations

import pytest

from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_tui.app import HermesApp
from hermes_tui.messages import SessionSelected
from hermes_tui.widgets.conversation import AgentResponse, OperatorMessage, UserMessage
from hermes_tui.widgets.platforms_pane import PlatformsPane
from hermes_tui.widgets.sessions_pane import SessionsPane
from tests.conftest import make_config
from tests.fakes.openai_server import ScriptedReply
from tests.tui.conftest import ready, wait_until

SIZE = (120, 36)
ANN = SessionSource("chat", "42", user_id="ann", user_name="Ann")
BOB = SessionSource("chat", "43", user_id="bob", user_name="Bob")


class RemoteChat(PlatformAdapter):
    """A remote platform driven by the test; records what the bot sends."""

    name = "chat"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    async def start(self) -> None:
        self.report("connected", "test platform")

    async def stop(self) -> None:
        self.report("stopped")

    async def send(self, source: SessionSource, text: str) -> None:
        self.sent.append((source.chat_id, text))

    async def incoming(self, source: SessionSource, text: str) -> None:
        await self.dispatch(MessageEvent(text=text, source=source))


@pytest.fixture
def remote() -> RemoteChat:
    return RemoteChat()


@pytest.fixture
def app(hermes_home, fake_openai, remote) -> HermesApp:
    config = make_config(hermes_home, fake_openai, GATEWAY_ALLOW_ALL_USERS="true")
    return HermesApp(config, discover_servers=False, adapters=[remote])


async def choose(app, pilot, key: str) -> None:
    """Select a session the way the Sessions pane does: through the screen's queue."""
    app.main_screen.post_message(SessionSelected(key))
    await wait_until(pilot, lambda: app.main_screen.current_key == key)
    await pilot.pause()


def rows(app):
    return app.main_screen.query_one(SessionsPane).rows


def texts(app, kind) -> list[str]:
    out = []
    for widget in app.main_screen.query(kind):
        if isinstance(widget, OperatorMessage):
            assert widget.source.startswith("*you, as the bot:*")  # labelled as the operator's
            out.append(widget.text)
        else:
            out.append(widget.source if hasattr(widget, "source") else str(widget.render()))
    return out


async def test_remote_chat_appears_and_streams_live(app, remote, fake_openai):
    answer = "Streaming to Ann, " + "word " * 60
    fake_openai.enqueue(ScriptedReply(text=answer, chunk_size=6, delay=0.01))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "hello from telegram-ish")
        await wait_until(
            pilot, lambda: "chat:dm:42" in rows(app) and rows(app)["chat:dm:42"].streaming
        )
        assert rows(app)["chat:dm:42"].unread
        await choose(app, pilot, "chat:dm:42")
        await wait_until(pilot, lambda: not rows(app)["chat:dm:42"].streaming)
        await app.gateway.runner.wait_idle()
        await pilot.pause(0.2)
        assert texts(app, UserMessage) == ["hello from telegram-ish"]
        assert texts(app, AgentResponse) == [answer.strip()]
        assert remote.sent[-1] == ("42", answer.strip())
        assert "Ann" in app.main_screen.conversation.border_title


async def test_switching_sessions_mid_stream_loses_and_duplicates_nothing(app, remote, fake_openai):
    # The model stops at two points of its answer until released, so every look below is
    # taken while Ann's answer is provably half-way, not after it ended.
    pieces = [f"part{i} " for i in range(120)]
    answer = "".join(pieces).strip()
    first, second = 10, 60  # the answer streams in 7-character chunks; hold before these
    fake_openai.enqueue(ScriptedReply(text=answer, chunk_size=7, hold_at=[first, second]))
    ann = "chat:dm:42"

    def streamed(chunks: int) -> str:
        return answer[: 7 * chunks]

    def received(key: str) -> str:
        """Deltas the screen took in for ``key``, whichever session it shows."""
        return "".join(app.main_screen.conversation.partial.get(key, []))

    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        local_key = app.gateway.local.source.session_key
        await choose(app, pilot, ann)
        await remote.incoming(ANN, "tell me a long story")
        await fake_openai.wait_until(lambda: fake_openai.holds_reached == 1)
        await wait_until(pilot, lambda: texts(app, AgentResponse) == [streamed(first)])
        assert app.main_screen.conversation.streaming

        # Another session is shown while Ann's answer goes on: none of it may appear there.
        await choose(app, pilot, local_key)
        assert texts(app, AgentResponse) == [] and texts(app, UserMessage) == []
        fake_openai.release()
        await fake_openai.wait_until(lambda: fake_openai.holds_reached == 2)
        await wait_until(pilot, lambda: received(ann) == streamed(second))
        await pilot.pause()
        assert fake_openai.held == 1 and rows(app)[ann].streaming  # still mid-answer
        assert texts(app, AgentResponse) == [] and texts(app, UserMessage) == []
        assert app.main_screen.current_key == local_key

        # Back to Ann mid-stream: what streamed meanwhile is there once, and it goes on.
        for _ in range(3):
            await choose(app, pilot, local_key)
            assert texts(app, AgentResponse) == []
            await choose(app, pilot, ann)
            assert texts(app, AgentResponse) == [streamed(second)]
            assert texts(app, UserMessage) == ["tell me a long story"]
            assert app.main_screen.conversation.streaming
        fake_openai.release()
        await app.gateway.runner.wait_idle()
        await wait_until(pilot, lambda: not app.main_screen.conversation.streaming)
        await pilot.pause()
        assert texts(app, AgentResponse) == [answer]
        assert texts(app, UserMessage) == ["tell me a long story"]
        await choose(app, pilot, local_key)
        assert texts(app, AgentResponse) == [] and texts(app, UserMessage) == []


async def test_operator_steps_in_as_the_bot(app, remote, fake_openai):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "is anyone there?")
        await app.gateway.runner.wait_idle()
        await choose(app, pilot, "chat:dm:42")
        app.main_screen.send_text("Yes, a human is here.")
        await wait_until(
            pilot, lambda: remote.sent and remote.sent[-1][1] == "Yes, a human is here."
        )
        await wait_until(pilot, lambda: "Yes, a human is here." in texts(app, OperatorMessage))
        assert len(fake_openai.requests) == 1
        rt = app.gateway.runner.sessions["chat:dm:42"]
        stored = await app.gateway.store.get_messages(rt.record.id)
        assert (
            stored[-1].meta.get("from_operator") and stored[-1].content == "Yes, a human is here."
        )


async def test_pause_and_resume_the_agent_for_one_chat(app, remote, fake_openai):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "first")
        await app.gateway.runner.wait_idle()
        await choose(app, pilot, "chat:dm:42")
        await pilot.press("f4")
        assert "chat:dm:42" in app.gateway.runner.paused_sessions
        assert "paused" in app.main_screen.conversation.border_subtitle
        await remote.incoming(ANN, "while paused")
        await wait_until(pilot, lambda: "while paused" in texts(app, UserMessage))
        await app.gateway.runner.wait_idle()
        assert len(fake_openai.requests) == 1
        await pilot.press("f4")
        assert "chat:dm:42" not in app.gateway.runner.paused_sessions
        await remote.incoming(ANN, "and now")
        await app.gateway.runner.wait_idle()
        assert remote.sent[-1] == ("42", "echo: and now")


async def test_platform_pause_and_counters_show_in_the_pane(app, remote):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(BOB, "hi")
        await app.gateway.runner.wait_idle()
        await choose(app, pilot, "chat:dm:43")
        await pilot.press("f8")
        pane = app.main_screen.query_one(PlatformsPane)
        await wait_until(pilot, lambda: pane.states["chat"][0].state == "paused")
        await wait_until(pilot, lambda: "chat paused ↓1 ↑1" in pane.plain)
        await pilot.press("f8")
        await wait_until(pilot, lambda: pane.states["chat"][0].state == "connected")


async def test_search_jumps_to_the_hit(app, remote):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(BOB, "the kumquat harvest is early this year")
        await app.gateway.runner.wait_idle()
        await pilot.press("f3")
        for ch in "kumquat":
            await pilot.press(ch)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: app.focused is not None and app.focused.id == "search-results"
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.main_screen.current_key == "chat:dm:43")
        await wait_until(pilot, lambda: bool(app.main_screen.query(".hit")))
        hit = app.main_screen.query_one(".hit")
        assert "kumquat" in (hit.source if hasattr(hit, "source") else str(hit.render()))


async def test_filter_sessions_by_typing(app, remote):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "apples")
        await remote.incoming(BOB, "pears")
        await app.gateway.runner.wait_idle()
        pane = app.main_screen.query_one(SessionsPane)
        await pilot.click("#session-filter")
        for ch in "pears":
            await pilot.press(ch)
        await pilot.pause()
        shown = [pane.get_option_at_index(i).id for i in range(pane.option_count)]
        assert shown == ["hdr|chat", "chat|chat:dm:43"]


async def test_narrow_terminal_hides_sidebar_until_f2(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        sidebar = app.main_screen.query_one("#sidebar")
        assert app.main_screen.has_class("narrow") and not sidebar.display
        await pilot.press("f2")
        assert sidebar.display and app.main_screen.sessions_pane.has_focus
        await pilot.press("f2")
        assert not sidebar.display and app.focused.id == "prompt"


async def test_f2_then_enter_opens_a_session_from_the_keyboard(app, remote):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "hello")
        await app.gateway.runner.wait_idle()
        await wait_until(pilot, lambda: "chat:dm:42" in rows(app))
        await pilot.press("f2")
        assert app.main_screen.sessions_pane.has_focus
        pane = app.main_screen.sessions_pane
        pane.highlighted = next(
            i
            for i in range(pane.option_count)
            if pane.get_option_at_index(i).id == "chat|chat:dm:42"
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.main_screen.current_key == "chat:dm:42")
        await pilot.press("f2", "f2")
        assert app.focused.id == "prompt"


async def test_help_lists_every_binding_with_its_id(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        text = app.screen.query_one("Markdown").source
        for binding in app.BINDINGS:
            assert binding.id and binding.id in text
        assert "/model" in text
        await pilot.press("escape")


async def test_platform_failure_is_kept_as_a_notification_that_opens(hermes_home, fake_openai):
    from hermes_gateway.platforms.base import FatalPlatformError
    from hermes_tui.screens.notifications import NotificationsScreen
    from hermes_tui.widgets.status_line import StatusLine

    class Broken(RemoteChat):
        name = "broken"

        async def start(self) -> None:
            raise FatalPlatformError("invalid token (401)")

    config = make_config(hermes_home, fake_openai, GATEWAY_ALLOW_ALL_USERS="true")
    app = HermesApp(config, discover_servers=False, adapters=[Broken()])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        status = app.main_screen.query_one(StatusLine)
        await wait_until(pilot, lambda: status.alerts == 1)
        await pilot.press("f9")
        await wait_until(pilot, lambda: isinstance(app.screen, NotificationsScreen))
        assert status.alerts == 0
        listing = app.screen.query_one("#notifications-list")
        assert "broken failed" in str(listing.get_option_at_index(0).prompt)
        assert "invalid token (401)" in str(listing.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, NotificationsScreen))
