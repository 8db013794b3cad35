"""The first-run form: typed into like a person would, against the fake OpenAI server.

The server is a real socket on 127.0.0.1 with a key of its own; the files checked are the
ones the app wrote in the test's HERMES_HOME, starting from a Hermes user's config.yaml.
"""

from __future__ import annotations

import stat

from hermes_gateway.config import load_config
from hermes_gateway.paths import HermesPaths
from hermes_tui.app import HermesApp
from hermes_tui.widgets.conversation import AgentResponse
from hermes_tui.widgets.first_run import FirstRunPanel
from hermes_tui.widgets.prompt_input import PromptInput
from hermes_tui.widgets.status_line import StatusLine
from tests.fakes.openai_server import FakeOpenAI
from tests.tui.conftest import ready, wait_until

SIZE = (120, 36)

USED_CONFIG = """\
# my Hermes setup: keep these comments
display:
  theme: textual-dark   # dark, please
agent:
  max_turns: 40
"""
USED_ENV = "# tokens\nTELEGRAM_ALLOWED_USERS=12345\n"


def _app(home) -> HermesApp:
    config = load_config(HermesPaths(home), {"HERMES_HOME": str(home)})
    assert not config.model.configured
    return HermesApp(config, discover_servers=False)


async def _form(app: HermesApp, pilot) -> FirstRunPanel:
    await ready(app, pilot)
    await wait_until(pilot, lambda: bool(app.main_screen.query(FirstRunPanel)))
    return app.main_screen.query_one(FirstRunPanel)


async def _type_into(pilot, panel: FirstRunPanel, field: str, text: str) -> None:
    box = panel.query_one(f"#setup-{field}")
    box.focus()
    await pilot.pause()
    for ch in text:
        await pilot.press("space" if ch == " " else ch)


async def _press(pilot, panel: FirstRunPanel, button: str) -> None:
    widget = panel.query_one(f"#setup-{button}")
    widget.focus()
    await pilot.pause()
    await pilot.press("enter")


def _status(panel: FirstRunPanel) -> str:
    return str(panel.query_one("#setup-status").render())


async def test_form_tests_saves_and_chats_without_a_restart(hermes_home):
    (hermes_home / "config.yaml").write_text(USED_CONFIG)
    (hermes_home / ".env").write_text(USED_ENV)
    async with FakeOpenAI(api_key="sk-right-key", models=["fake-model", "other-model"]) as fake:
        app = _app(hermes_home)
        async with app.run_test(size=SIZE) as pilot:
            panel = await _form(app, pilot)
            await _type_into(pilot, panel, "base_url", fake.base_url)
            await _type_into(pilot, panel, "api_key", "sk-right-key")
            await _press(pilot, panel, "test")
            await wait_until(pilot, lambda: "Connected" in _status(panel))
            assert "2 models found" in _status(panel)
            assert panel.model == "fake-model"  # the first listed, until one is chosen
            panel.query_one("#setup-model").value = "other-model"
            await _press(pilot, panel, "save")
            await wait_until(pilot, lambda: not app.main_screen.query(FirstRunPanel))

            config_text = (hermes_home / "config.yaml").read_text()
            assert config_text.startswith(USED_CONFIG)  # every byte of it kept
            assert f"base_url: {fake.base_url}" in config_text
            assert "name: other-model" in config_text
            assert "sk-right-key" not in config_text
            env_file = hermes_home / ".env"
            assert env_file.read_text() == USED_ENV + "OPENAI_API_KEY='sk-right-key'\n"
            assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
            reloaded = load_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
            assert (reloaded.model.name, reloaded.model.api_key) == ("other-model", "sk-right-key")
            assert reloaded.agent.max_iterations == 40

            # The same app, no restart: the status line names the model, and the next
            # message is answered by the new server.
            status = app.main_screen.query_one(StatusLine)
            await wait_until(pilot, lambda: status.model == "other-model")
            assert isinstance(app.focused, PromptInput)
            app.main_screen.send_text("hello there")
            await wait_until(
                pilot,
                lambda: any(
                    r.source == "echo: hello there" for r in app.main_screen.query(AgentResponse)
                ),
                timeout=10,
            )
            assert fake.requests[-1]["model"] == "other-model"


async def test_wrong_key_says_check_your_key_and_writes_nothing(hermes_home):
    (hermes_home / "config.yaml").write_text(USED_CONFIG)
    async with FakeOpenAI(api_key="sk-right-key") as fake:
        app = _app(hermes_home)
        async with app.run_test(size=SIZE) as pilot:
            panel = await _form(app, pilot)
            await _type_into(pilot, panel, "base_url", fake.base_url)
            await _type_into(pilot, panel, "api_key", "sk-wrong")
            await _press(pilot, panel, "save")  # Save tests first: nothing is written
            await wait_until(pilot, lambda: "check your key" in _status(panel))
            assert "401" in _status(panel)
            assert panel.query_one("#setup-api_key").has_class("-invalid")
            assert app.main_screen.query(FirstRunPanel)
    assert (hermes_home / "config.yaml").read_text() == USED_CONFIG
    assert not (hermes_home / ".env").exists()


async def test_unreachable_url_and_bad_fields_write_nothing(hermes_home):
    fake = FakeOpenAI(api_key=None)
    await fake.start()
    dead_url = fake.base_url
    await fake.stop()  # a port nobody listens on any more
    app = _app(hermes_home)
    async with app.run_test(size=SIZE) as pilot:
        panel = await _form(app, pilot)
        await _type_into(pilot, panel, "base_url", "localhost:8080")
        await _press(pilot, panel, "save")
        await wait_until(pilot, lambda: "Base URL: must start with http" in _status(panel))
        assert panel.query_one("#setup-base_url").has_class("-invalid")

        panel.fill(dead_url)
        await _press(pilot, panel, "test")
        await wait_until(pilot, lambda: "No server answers" in _status(panel))
        assert dead_url in _status(panel)
        await _press(pilot, panel, "save")
        await wait_until(pilot, lambda: "No server answers" in _status(panel))
        await pilot.pause()
        assert app.main_screen.query(FirstRunPanel)
    assert not (hermes_home / "config.yaml").exists()
    assert not (hermes_home / ".env").exists()


async def test_a_server_that_is_not_openai_compatible(hermes_home):
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>a web page</html>", content_type="text/html")

    site_app = web.Application()
    site_app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(site_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        app = _app(hermes_home)
        async with app.run_test(size=SIZE) as pilot:
            panel = await _form(app, pilot)
            panel.fill(f"http://127.0.0.1:{port}/v1")
            await _press(pilot, panel, "test")
            await wait_until(pilot, lambda: "not an OpenAI-compatible" in _status(panel))
    finally:
        await runner.cleanup()
    assert not (hermes_home / "config.yaml").exists()
