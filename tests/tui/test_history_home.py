"""The control room on a home that has been used: restarts, chats from before, the transcript
rebuilt from the store, earlier sessions, search hits, API traffic.

Every test first makes history the way a user does (a remote chat answered, commands typed, a
tool run, ``/new``), stops the app, and starts a second one on the same HERMES_HOME: what the
second one shows is what these tests check.
"""

from __future__ import annotations

import asyncio

import pytest

from hermes_gateway.models import SessionSource
from hermes_gateway.store import SessionStore, StoredMessage, default_db_path
from hermes_tui.app import HermesApp
from hermes_tui.messages import SessionSelected
from hermes_tui.screens.search import SearchScreen
from hermes_tui.widgets.conversation import (
    AgentResponse,
    CommandReply,
    NoticeLine,
    OperatorMessage,
    ToolBlock,
    UserMessage,
)
from hermes_tui.widgets.prompt_input import PromptInput
from hermes_tui.widgets.sessions_pane import SessionsPane
from hermes_tui.widgets.tool_progress import ToolRow
from tests.conftest import make_config
from tests.fakes.openai_server import ScriptedReply, ToolCallSpec
from tests.tui.conftest import ready, wait_until
from tests.tui.test_control_room import ANN, BOB, RemoteChat

SIZE = (120, 36)
ANN_KEY, BOB_KEY = ANN.session_key, BOB.session_key


def new_app(hermes_home, fake_openai, remote: RemoteChat | None = None) -> HermesApp:
    config = make_config(hermes_home, fake_openai, GATEWAY_ALLOW_ALL_USERS="true")
    return HermesApp(config, discover_servers=False, adapters=[remote or RemoteChat()])


def screen_items(app: HermesApp) -> list[tuple[str, str]]:
    """What the Conversation pane shows, as (kind, text): to compare two showings."""
    out: list[tuple[str, str]] = []
    for widget in app.main_screen.conversation.children:
        if isinstance(widget, OperatorMessage):
            out.append(("operator", widget.text))
        elif isinstance(widget, CommandReply):
            out.append(("command", f"{widget.invocation} => {widget.reply}"))
        elif isinstance(widget, ToolBlock):
            out.append(("tool", f"{widget.name_} {widget.title}"))
        elif isinstance(widget, AgentResponse):
            out.append(("assistant", widget.source.strip()))
        elif isinstance(widget, UserMessage | NoticeLine):
            out.append((type(widget).__name__, str(widget.render())))
    return out


async def say(app: HermesApp, text: str) -> None:
    """Type a line into the input as the operator does, and let the gateway finish with it."""
    app.main_screen.send_text(text)
    if inputs := [w for w in app.workers if w.group == "input"]:
        await app.workers.wait_for_complete(inputs)  # (an empty list would mean "all")
    await app.gateway.runner.wait_idle()


async def choose(app: HermesApp, pilot, key: str, session_id: str | None = None) -> None:
    app.main_screen.post_message(SessionSelected(key, session_id))
    await wait_until(
        pilot,
        lambda: (
            app.main_screen.current_key == key
            and (session_id is None or app.main_screen.conversation.session_id == session_id)
        ),
    )
    await pilot.pause()


def option_ids(pane: SessionsPane) -> list[str]:
    return [pane.get_option_at_index(i).id or "" for i in range(pane.option_count)]


async def test_a_chat_from_before_the_restart_is_a_remote_chat(hermes_home, fake_openai):
    first = RemoteChat()
    app = new_app(hermes_home, fake_openai, first)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await first.incoming(ANN, "are you there?")
        await app.gateway.runner.wait_idle()
    asked = len(fake_openai.requests)

    remote = RemoteChat()
    app = new_app(hermes_home, fake_openai, remote)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.sessions_pane
        assert f"chat|{ANN_KEY}" in option_ids(pane)
        await choose(app, pilot, ANN_KEY)
        assert screen_items(app)[:2] == [
            ("UserMessage", "are you there?"),
            ("assistant", "echo: are you there?"),
        ]
        assert "Ann" in app.main_screen.conversation.border_title
        assert "as the bot" in app.query_one(PromptInput).placeholder
        app.main_screen.send_text("The operator here.")
        await wait_until(pilot, lambda: ("42", "The operator here.") in remote.sent)
        await wait_until(pilot, lambda: ("operator", "The operator here.") in screen_items(app))
        assert len(fake_openai.requests) == asked  # it went to Ann, not to the local agent
        await pilot.press("f4")
        await wait_until(pilot, lambda: app.gateway.operator.session_paused(ANN_KEY))
        assert "agent paused" in app.main_screen.conversation.border_subtitle


async def test_selecting_twice_at_once_never_crashes(hermes_home, fake_openai):
    first = RemoteChat()
    app = new_app(hermes_home, fake_openai, first)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await first.incoming(ANN, "one")
        await first.incoming(BOB, "two")
        await app.gateway.runner.wait_idle()

    for _ in range(3):  # restarts on a home with chats: the start's own load and a click race
        app = new_app(hermes_home, fake_openai)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            screen = app.main_screen
            local = screen.current_key
            await asyncio.gather(
                screen.select_session(ANN_KEY),
                screen.select_session(BOB_KEY),
                screen.select_session(ANN_KEY),
                screen.select_session(local),
                screen.select_session(BOB_KEY),
            )
            await pilot.pause()
            assert screen.current_key == BOB_KEY
            assert screen_items(app)[0] == ("UserMessage", "two")
            assert len(app.main_screen.query("#tools-empty")) == 1


async def test_undo_and_retry_change_screen_and_store_alike(hermes_home, fake_openai):
    fake_openai.enqueue(
        ScriptedReply(text="First answer."),
        ScriptedReply(text="Second answer."),
        ScriptedReply(text="Second answer, retried."),
    )
    app = new_app(hermes_home, fake_openai)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        for text in ("first question", "second question"):
            await say(app, text)
        screen.send_text("/retry")
        await wait_until(
            pilot, lambda: ("assistant", "Second answer, retried.") in screen_items(app)
        )
        await app.gateway.runner.wait_idle()
        await pilot.pause()
        shown = screen_items(app)
        assert shown.count(("UserMessage", "second question")) == 1
        assert ("assistant", "Second answer.") not in shown
        assert ("command", "/retry => Retrying the last message.") in shown

        screen.send_text("/undo")
        await wait_until(pilot, lambda: any("/undo" in t for _, t in screen_items(app)))
        await pilot.pause()
        after_undo = screen_items(app)
        assert ("UserMessage", "second question") not in after_undo
        assert ("assistant", "Second answer, retried.") not in after_undo
        assert after_undo[:3] == [
            ("UserMessage", "first question"),
            ("assistant", "First answer."),
            ("command", "/retry => Retrying the last message."),  # typed before that exchange
        ]
        screen.send_text("/status")
        await wait_until(pilot, lambda: any("/status" in t for _, t in screen_items(app)))
        await pilot.pause()
        before = screen_items(app)
        local = screen.current_key
        await screen.select_session(BOB_KEY)
        await screen.select_session(local)
        assert screen_items(app) == before  # reopening shows exactly what was shown

    app = new_app(hermes_home, fake_openai)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        # /status's reply names uptime and counters that differ after a restart: compare up
        # to it, and that it is there.
        assert screen_items(app)[:-1] == before[:-1]
        assert screen_items(app)[-1][1].startswith("/status => ")


async def test_tool_calls_are_readable_in_the_transcript_and_kept_in_the_tools_pane(
    hermes_home, fake_openai
):
    fake_openai.enqueue(
        ScriptedReply(
            text="Listing.",
            tool_calls=[ToolCallSpec("terminal", {"command": "printf 'alpha\\nbeta\\n'"})],
        ),
        ScriptedReply(text="Two lines."),
    )
    remote = RemoteChat()
    app = new_app(hermes_home, fake_openai, remote)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        screen.send_text("list them")
        await app.gateway.runner.wait_idle()
        await wait_until(pilot, lambda: ("assistant", "Two lines.") in screen_items(app))
        block = screen.query_one(ToolBlock)
        assert block.done and "✓" in block.title
        block.collapsed = False
        await pilot.pause()
        output = str(block.query_one(".tool-output").render())
        assert "alpha" in output and "beta" in output
        assert "printf" in str(block.query_one(".tool-args").render())
        live = screen_items(app)
        local = screen.current_key
        await remote.incoming(ANN, "hello")
        await app.gateway.runner.wait_idle()
        await screen.select_session(ANN_KEY)
        assert not [r for r in screen.query(ToolRow) if r.display]
        await screen.select_session(local)
        rows = [r for r in screen.query(ToolRow) if r.display]
        assert [r.tool_name for r in rows] == ["terminal"]  # kept across the switch
        assert screen_items(app) == live

    app = new_app(hermes_home, fake_openai)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert screen_items(app) == live  # the same blocks, rebuilt from the store
        block = app.main_screen.query_one(ToolBlock)
        assert "alpha" in str(block.query_one(".tool-output").render())


async def test_earlier_sessions_are_folded_under_their_chat_and_open_read_only(
    hermes_home, fake_openai
):
    remote = RemoteChat()
    app = new_app(hermes_home, fake_openai, remote)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "the old topic: quinces")
        await app.gateway.runner.wait_idle()
        await remote.incoming(ANN, "/new")
        await remote.incoming(ANN, "the new topic")
        await app.gateway.runner.wait_idle()
        old = [s for s in await app.gateway.runner.store.sessions_of(ANN_KEY) if s.ended_at]
        assert len(old) == 1

    remote = RemoteChat()
    app = new_app(hermes_home, fake_openai, remote)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        pane = screen.sessions_pane
        assert f"fold|{ANN_KEY}" in option_ids(pane)
        assert not any(i.startswith("past|") for i in option_ids(pane))
        pane.focus()
        pane.highlighted = option_ids(pane).index(f"fold|{ANN_KEY}")
        await pilot.press("enter")
        past_id = f"past|{ANN_KEY}|{old[0].id}"
        await wait_until(pilot, lambda: past_id in option_ids(pane))
        pane.highlighted = option_ids(pane).index(past_id)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.conversation.session_id == old[0].id)
        await pilot.pause()
        assert ("UserMessage", "the old topic: quinces") in screen_items(app)
        assert ("UserMessage", "the new topic") not in screen_items(app)
        assert "earlier session" in screen.conversation.border_title
        assert "earlier session" in app.query_one(PromptInput).placeholder
        screen.send_text("back to you")  # goes to the chat's current session, shown
        await wait_until(pilot, lambda: ("42", "back to you") in remote.sent)
        await wait_until(pilot, lambda: screen.view is not None and screen.view.current)
        await wait_until(pilot, lambda: ("operator", "back to you") in screen_items(app))
        assert ("UserMessage", "the new topic") in screen_items(app)


async def test_a_search_hit_opens_its_own_session_labelled_with_its_own_title(
    hermes_home, fake_openai
):
    app = new_app(hermes_home, fake_openai)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        for line in ("/title Quince jam", "how do I make quince jelly", "/new", "other things"):
            await say(app, line)
        old = [s for s in await app.gateway.runner.store.sessions_of(screen.current_key)]
        assert old[0].title != "Quince jam" and old[1].title == "Quince jam"

    app = new_app(hermes_home, fake_openai)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("f3")
        search = app.screen
        assert isinstance(search, SearchScreen)
        for ch in "quince":
            await pilot.press(ch)
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(search.hits))
        first = search.hits[0]
        assert first.session_id == old[1].id
        label = SearchScreen._label(first, first.created_at)
        assert "Quince jam" in label.plain and "earlier session" in label.plain
        await pilot.press("enter")
        screen = app.main_screen
        await wait_until(pilot, lambda: screen.conversation.session_id == old[1].id)
        await wait_until(pilot, lambda: bool(screen.query(".hit")))
        hit = screen.query_one(".hit")
        assert hit.id == f"msg-{first.message_id}"
        assert "Quince jam" in screen.conversation.border_title


async def test_api_traffic_is_one_row_per_client_and_chats_stay_in_sight(hermes_home, fake_openai):
    remote = RemoteChat()
    app = new_app(hermes_home, fake_openai, remote)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "hi from Ann")
        await app.gateway.runner.wait_idle()
    store = await SessionStore.open(default_db_path(hermes_home))
    try:
        for n in range(12):  # twelve stateless requests: twelve stored sessions
            source = SessionSource("api", f"req{n:02d}", user_id=None, user_name="API client")
            record = await store.create_session(
                source.session_key,
                platform="api",
                chat_type="dm",
                chat_id=source.chat_id,
                display_name="API client",
            )
            await store.append_messages(record.id, [StoredMessage("user", f"request {n}")])
    finally:
        await store.close()

    app = new_app(hermes_home, fake_openai)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.sessions_pane
        ids = option_ids(pane)
        assert ids.count("group|API client") == 1
        assert not [i for i in ids if i.startswith("chat|api:")]
        assert f"chat|{ANN_KEY}" in ids
        pane.toggle("group|API client")
        assert len([i for i in option_ids(pane) if i.startswith("chat|api:")]) == 12


async def test_filter_then_enter_opens_the_first_match(hermes_home, fake_openai):
    remote = RemoteChat()
    app = new_app(hermes_home, fake_openai, remote)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await remote.incoming(ANN, "apples")
        await remote.incoming(BOB, "pears")
        await app.gateway.runner.wait_idle()
        await pilot.click("#session-filter")
        for ch in "bob":
            await pilot.press(ch)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.main_screen.current_key == BOB_KEY)
        assert app.focused is app.query_one(PromptInput)


@pytest.mark.parametrize("typed_title", [False, True])
async def test_sessions_get_a_title_after_the_first_exchange(hermes_home, fake_openai, typed_title):
    remote = RemoteChat()
    app = new_app(hermes_home, fake_openai, remote)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        if typed_title:
            screen.send_text("/title Garden plans")
            await wait_until(pilot, lambda: "Garden plans" in screen.conversation.border_title)
        screen.send_text("plant tomatoes in may")
        await app.gateway.runner.wait_idle()
        if typed_title:
            # Decided when the turn ended (before wait_idle returns): a named session is
            # never sent to the model for a title.
            assert not app.gateway.runner.sessions[screen.current_key].title_asked
            assert "Garden plans" in screen.conversation.border_title
            return
        await wait_until(pilot, lambda: "Plant tomatoes in may" in screen.conversation.border_title)
        row = screen.sessions_pane.rows[screen.current_key]
        assert row.shown_name == "Plant tomatoes in may"
        await remote.incoming(ANN, "what about roses")
        await app.gateway.runner.wait_idle()
        await wait_until(pilot, lambda: screen.sessions_pane.rows[ANN_KEY].title != "")
        assert screen.sessions_pane.rows[ANN_KEY].shown_name == "Ann · What about roses"
        assert len(fake_openai.title_requests) == 2
