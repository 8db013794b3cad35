"""The app driven by Textual's Pilot, with its real gateway and the scripted model server."""

from __future__ import annotations

import pytest

from hermes_gateway import events as ev
from hermes_gateway.config import load_config
from hermes_gateway.paths import HermesPaths
from hermes_tui.app import HermesApp
from hermes_tui.widgets.conversation import AgentResponse, CommandReply, NoticeLine, UserMessage
from hermes_tui.widgets.prompt_input import PromptInput
from hermes_tui.widgets.slash_complete import SlashComplete
from hermes_tui.widgets.tool_progress import ToolRow
from tests.conftest import make_config
from tests.fakes.openai_server import ScriptedReply, ToolCallSpec
from tests.tui.conftest import ready, wait_until

SIZE = (120, 36)


@pytest.fixture
def app(hermes_home, fake_openai) -> HermesApp:
    return HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)


def last(app: HermesApp, kind: type):
    found = list(app.main_screen.query(kind))
    return found[-1] if found else None


async def type_line(pilot, text: str) -> None:
    for ch in text:
        await pilot.press("space" if ch == " " else ch)


async def test_message_streams_in_as_markdown(app, fake_openai):
    answer = "Here is **bold** text and a list:\n\n- one\n- two\n"
    fake_openai.enqueue(ScriptedReply(text=answer, chunk_size=4, delay=0.01))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await type_line(pilot, "hello")
        await pilot.press("enter")
        await wait_until(pilot, lambda: last(app, UserMessage) is not None)
        assert str(last(app, UserMessage).render()) == "hello"
        await wait_until(
            pilot,
            lambda: (
                not app.main_screen.conversation.streaming
                and last(app, AgentResponse) is not None
                and last(app, AgentResponse).source == answer.strip()
            ),
        )
        assert app.query_one(PromptInput).text == ""
        status = app.main_screen.query_one("#status")
        assert status.tokens > 0 and status.model == "fake-model"


async def test_tool_call_shows_in_tool_pane(app, fake_openai):
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo hi"})]),
        ScriptedReply(text="done"),
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await type_line(pilot, "run")
        await pilot.press("enter")
        await wait_until(pilot, lambda: last(app, ToolRow) is not None and last(app, ToolRow).done)
        row = last(app, ToolRow)
        assert row.tool_name == "terminal" and row.preview == "echo hi" and row.ok
        assert "terminal" in str(row.render()) and "✓" in str(row.render())


async def test_slash_opens_autocomplete_with_descriptions(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        completer = app.query_one(SlashComplete)
        await pilot.press("slash", "m", "o")
        await pilot.pause()
        assert completer.display and completer.matches[0].name == "model"
        label = str(completer.get_option_at_index(0).prompt)
        assert "/model" in label and "[name]" in label and "Show or switch the model" in label
        await pilot.press("tab")
        assert app.query_one(PromptInput).text == "/model "
        # Now its argument completes: the models the server lists.
        await wait_until(pilot, lambda: completer.is_open and completer.matches == ["fake-model"])
        await pilot.press("escape")
        assert not completer.display


async def test_enter_on_completion_runs_argless_command(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("slash", "h", "e")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: last(app, CommandReply) is not None)
        assert "/model" in last(app, CommandReply).reply


async def test_ctrl_c_interrupts_the_answer(app, fake_openai):
    fake_openai.enqueue(ScriptedReply(text="long " * 400, chunk_size=5, delay=0.02))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        finished: list = []
        app.gateway.bus.add_listener(
            lambda e: isinstance(e, ev.TurnFinished) and finished.append(e)
        )
        await type_line(pilot, "go")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.main_screen.conversation.streaming)
        await pilot.pause(0.2)
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: bool(finished))
        assert finished[0].interrupted
        await wait_until(
            pilot,
            lambda: any(
                "interrupted" in str(n.render()) for n in app.main_screen.query(NoticeLine)
            ),
        )
        assert app.is_running, "Ctrl+C stops the answer, not the app"


async def test_history_recall_survives_restart(hermes_home, fake_openai):
    config = make_config(hermes_home, fake_openai)
    app = HermesApp(config, discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        prompt = app.query_one(PromptInput)
        for text in ("first", "second"):
            await type_line(pilot, text)
            await pilot.press("enter")
            await app.gateway.runner.wait_idle()
        await type_line(pilot, "draft")
        await pilot.press("up")
        assert prompt.text == "second"
        await pilot.press("up")
        assert prompt.text == "first"
        await pilot.press("down", "down")
        assert prompt.text == "draft"
        await app.gateway.runner.wait_idle()
    again = HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)
    async with again.run_test(size=SIZE) as pilot:
        await ready(again, pilot)
        await pilot.press("up")
        assert again.query_one(PromptInput).text == "second"


async def test_ctrl_j_inserts_a_newline_instead_of_sending(app, fake_openai):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await type_line(pilot, "a")
        await pilot.press("ctrl+j")
        await type_line(pilot, "b")
        assert app.query_one(PromptInput).text == "a\nb"
        assert fake_openai.requests == []


async def test_quit_command_exits_cleanly(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await type_line(pilot, "/quit")
        await pilot.press("escape", "enter")
        await wait_until(pilot, lambda: not app.is_running)
    assert app.gateway.runner.stopping


async def test_bad_config_names_the_key_and_file(hermes_home):
    (hermes_home / "config.yaml").write_text("model:\n  timout: 3\n")
    from hermes_tui.cli import _load_config

    config, error = _load_config()
    assert config is None and "model.timout" in error and "config.yaml" in error
    app = HermesApp(config, error)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: last(app, NoticeLine) is not None)
        text = str(last(app, NoticeLine).render())
        assert "model.timout" in text and "did you mean 'model.timeout'" in text


async def test_first_run_panel_without_a_model(hermes_home):
    config = load_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
    app = HermesApp(config, discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await wait_until(pilot, lambda: bool(app.main_screen.query("#first-run")))
        text = str(app.main_screen.query_one("#first-run-text").render())
        assert "OpenAI-compatible" in text and str(hermes_home / "config.yaml") in text
        assert app.main_screen.query("#setup-base_url") and app.main_screen.query("#setup-save")
        await wait_until(pilot, lambda: app.focused is app.main_screen.query_one("#setup-base_url"))
        await pilot.press("escape")  # the form has the keys first; Esc goes to the chat input
        assert isinstance(app.focused, PromptInput)
        await type_line(pilot, "hi")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: any(
                "No model is configured" in str(n.render())
                for n in app.main_screen.query(NoticeLine)
            ),
        )


async def test_choosing_a_found_server_configures_it(hermes_home):
    from hermes_gateway.discovery import discover
    from hermes_tui.widgets.first_run import FirstRunPanel
    from tests.fakes.openai_server import FakeOpenAI

    local_server = FakeOpenAI(api_key=None)  # like Ollama: no key needed
    await local_server.start()
    port = int(local_server.base_url.rsplit(":", 1)[1].split("/")[0])
    found = await discover((("Fake", port), ("Nobody", 9)))
    assert found and found[0].models == ("fake-model",)
    config = load_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
    app = HermesApp(config, discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await wait_until(pilot, lambda: bool(app.main_screen.query(FirstRunPanel)))
        panel = app.main_screen.query_one(FirstRunPanel)
        await panel.show_servers(found)
        await pilot.pause()
        button = app.main_screen.query_one("#use-server-0")
        app.main_screen.conversation.scroll_to_widget(button, animate=False)
        await pilot.pause()
        await pilot.click(button)  # fills the form; Save tests it again and writes it
        await wait_until(pilot, lambda: panel.base_url == local_server.base_url)
        assert panel.model == "fake-model"
        assert app.focused is panel.query_one("#setup-save")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not app.main_screen.query(FirstRunPanel))
        assert "fake-model" in (hermes_home / "config.yaml").read_text()
        await type_line(pilot, "works")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: (
                last(app, AgentResponse) is not None
                and last(app, AgentResponse).source == "echo: works"
            ),
        )
    await local_server.stop()


async def test_palette_offers_the_main_actions(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "New session",
            "Stop answer",
            "Keys and commands",
            "Session status",
            "Search conversations",
            "Pause or resume this chat's agent",
        ):
            assert wanted in titles


async def test_hermes_agent_data_in_the_home_is_offered_for_import(hermes_home, fake_openai):
    from tests.fakes.hermes_agent_home import HermesAgentHome, hermes_job

    agent_home = HermesAgentHome(hermes_home)  # Hermes Agent's files beside ours
    agent_home.session("s1", "cli", started_at=1_700_000_000.0)
    agent_home.message("s1", "user", "hello", at=1_700_000_001.0)
    agent_home.close()
    agent_home.jobs([hermes_job("abc123def456", "news", {"kind": "cron", "expr": "0 9 * * *"})])
    agent_home.approved("telegram", {"42": "alice"})
    app = HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await wait_until(
            pilot,
            lambda: any(
                "Found Hermes Agent data" in str(n.render())
                for n in app.main_screen.query(NoticeLine)
            ),
        )
        notice = next(
            str(n.render())
            for n in app.main_screen.query(NoticeLine)
            if "Found Hermes Agent data" in str(n.render())
        )
        assert "(1 sessions, 1 cron jobs, 1 pairings)" in notice
        assert "hermes import hermes-agent" in notice
