"""The hands: focus, scrolling, history, copying; and the eyes: what shows when."""

from __future__ import annotations

import pytest

from hermes_gateway import events as ev
from hermes_tui import gateway_messages as gm
from hermes_tui.app import HermesApp
from hermes_tui.widgets.conversation import ConversationView
from hermes_tui.widgets.platforms_pane import PlatformsPane
from hermes_tui.widgets.prompt_input import PromptInput
from hermes_tui.widgets.slash_complete import SlashComplete
from hermes_tui.widgets.status_line import StatusLine
from hermes_tui.widgets.tool_progress import ToolProgressPane
from tests.conftest import make_config
from tests.fakes.openai_server import ScriptedReply
from tests.tui.conftest import ready, wait_until

SIZE = (100, 30)
LONG = "\n\n".join(f"Paragraph {n}: " + "words " * 12 for n in range(40))


@pytest.fixture
def app(hermes_home, fake_openai) -> HermesApp:
    return HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)


def prompt(app: HermesApp) -> PromptInput:
    return app.main_screen.query_one(PromptInput)


async def send(app: HermesApp, pilot, text: str) -> None:
    prompt(app).focus()
    prompt(app).load_text(text)
    await pilot.press("enter")
    if inputs := [w for w in app.workers if w.group == "input"]:
        await app.workers.wait_for_complete(inputs)  # (an empty list would mean "all")
    await app.gateway.runner.wait_idle()
    await pilot.pause()


async def test_typing_after_a_click_in_the_conversation_reaches_the_input(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.click(ConversationView)
        assert not prompt(app).has_focus
        await pilot.press("h", "i")
        assert prompt(app).has_focus and prompt(app).text == "hi"


async def test_typing_in_the_sessions_list_filters_and_escape_returns(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("f2")
        assert app.main_screen.sessions_pane.has_focus
        await pilot.press("t", "e")
        search = app.main_screen.query_one("#session-filter")
        assert search.has_focus and search.value == "te"
        await pilot.press("escape")
        assert prompt(app).has_focus


async def test_page_keys_scroll_the_conversation_from_the_input(app, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=LONG))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await send(app, pilot, "a long one please")
        conversation = app.main_screen.conversation
        await wait_until(pilot, lambda: conversation.max_scroll_y > 20)
        conversation.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        bottom = conversation.scroll_y
        await pilot.press("pageup")
        await pilot.pause()
        assert conversation.scroll_y < bottom and prompt(app).has_focus
        await pilot.press("ctrl+home")
        await pilot.pause()
        assert conversation.scroll_y == 0
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert conversation.scroll_y >= conversation.max_scroll_y - 1


async def test_output_while_scrolled_up_is_counted_and_sending_jumps_to_the_end(app, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=LONG), ScriptedReply(text="short one"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await send(app, pilot, "a long one please")
        conversation = app.main_screen.conversation
        await wait_until(pilot, lambda: conversation.max_scroll_y > 20)
        await pilot.press("ctrl+home")
        await pilot.pause()
        await app.gateway.local.submit("from elsewhere")  # output the reader is not watching
        await app.gateway.runner.wait_idle()
        await wait_until(pilot, lambda: conversation.unseen >= 1)
        assert "new (Ctrl+End)" in conversation.border_subtitle
        assert conversation.scroll_y == 0  # nothing pulled the reader down
        await send(app, pilot, "and now?")
        await wait_until(pilot, lambda: conversation.scroll_y >= conversation.max_scroll_y - 1)
        assert conversation.unseen == 0 and "new" not in conversation.border_subtitle


async def test_history_walks_past_recalled_commands(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await send(app, pilot, "/status")
        await send(app, pilot, "hello")
        completer = app.main_screen.query_one(SlashComplete)
        await pilot.press("up")
        assert prompt(app).text == "hello"
        await pilot.press("up")
        await pilot.pause()
        assert prompt(app).text == "/status" and not completer.is_open
        await pilot.press("down")
        await pilot.pause()
        assert prompt(app).text == "hello" and not completer.is_open
        prompt(app).load_text("")
        await pilot.press("slash", "s")
        await pilot.pause()
        assert completer.is_open  # typing still completes


async def test_copy_keys_put_text_on_the_clipboard(app, fake_openai):
    answer = "Here it is:\n\n```python\nprint('copied')\n```\n\nDone."
    fake_openai.enqueue(ScriptedReply(text=answer))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("alt+c")
        assert app.clipboard == ""  # nothing to copy yet: a warning, nothing copied
        await send(app, pilot, "code please")
        await wait_until(pilot, lambda: app.main_screen.conversation.last_answer() == answer)
        await pilot.press("alt+c")
        assert app.clipboard == answer
        await pilot.press("alt+k")
        assert app.clipboard == "print('copied')"
        prompt(app).load_text("select me")
        prompt(app).select_all()
        await pilot.press("ctrl+c")
        assert app.clipboard == "select me"


async def test_a_config_error_shows_in_the_platforms_pane_and_the_input(hermes_home):
    app = HermesApp(None, "config.yaml: model.bse_url: unknown key", discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot, lambda: "not started" in app.main_screen.query_one(PlatformsPane).plain
        )
        assert "fix config.yaml: config.yaml: model.bse_url" in prompt(app).placeholder


async def test_short_loop_stalls_stay_out_of_the_status_line(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        status = app.main_screen.query_one(StatusLine)
        status.post_message(gm.message_for(ev.LoopLag(lag=0.3)))
        await pilot.pause()
        assert status.lag_ms == 0 and status.last_lag_ms == pytest.approx(300)
        assert "stalled" not in str(status.render())
        status.post_message(gm.message_for(ev.LoopLag(lag=1.5)))
        await pilot.pause()
        assert "loop stalled 1500 ms" in str(status.render())


async def test_the_tools_pane_steps_aside_while_empty(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        tools = app.main_screen.query_one(ToolProgressPane)
        assert tools.has_class("-empty") and not tools.display
        conversation_rows = app.main_screen.conversation.size.height
        assert conversation_rows >= 14  # the rows the Tools pane would take are the reader's


async def test_model_completes_from_the_server_and_refuses_what_it_does_not_list(
    hermes_home, fake_openai
):
    fake_openai.models = ["fake-model", "fake-large", "other-7b"]
    app = HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        completer = app.main_screen.query_one(SlashComplete)
        prompt(app).focus()
        for key in ("slash", "m", "o", "d", "e", "l", "space", "f"):
            await pilot.press(key)
        await wait_until(pilot, lambda: completer.is_open)
        assert completer.matches == ["fake-model", "fake-large"]
        await pilot.press("down", "tab")
        assert prompt(app).text == "/model fake-large"
        prompt(app).load_text("")
        await send(app, pilot, "/model gpt-nope")
        replies = [w for w in app.main_screen.conversation.children if hasattr(w, "reply")]
        assert "Unknown model “gpt-nope”" in replies[-1].reply
        assert "other-7b" in replies[-1].reply


async def test_an_empty_conversation_says_what_to_do(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        conversation = app.main_screen.conversation
        assert not conversation.children
        assert "Type a message below" in str(conversation.render())
        await send(app, pilot, "hello")
        await wait_until(pilot, lambda: len(conversation.children) >= 2)
        assert "Type a message below" not in app.export_screenshot().replace("&#160;", " ")
