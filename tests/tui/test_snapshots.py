"""SVG snapshots of the main screen states (stored in snapshots/, reviewed like code).

Inputs are made deterministic: a non-blinking cursor, a frozen spinner frame, and the one
path on screen (the first-run panel's config file) shown under a fixed name. Each test keeps
its state in its own HERMES_HOME (the autouse ``hermes_home`` fixture, under tmp_path), so no
snapshot can see another's database, and parallel runs of the suite cannot collide.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from hermes_gateway.config import load_config
from hermes_gateway.paths import HermesPaths
from hermes_tui.app import HermesApp
from hermes_tui.widgets.prompt_input import PromptInput
from hermes_tui.widgets.tool_progress import ToolRow
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.tui.conftest import ready, wait_until

SIZE = (120, 36)


def quiet(config):
    """A snapshot must not depend on how busy the machine was: no loop-stall figure, and no
    session title arriving (from a background request) just before or after the shot."""
    config.gateway.loop_lag_threshold_ms = 1e9
    config.gateway.auto_title = False
    return config


SHOWN_HOME = Path("/tmp/hermes-snapshot-home")
"""The HERMES_HOME the first-run panel displays; nothing is ever read or written there."""


@dataclasses.dataclass(frozen=True)
class _ShownPaths(HermesPaths):
    """A test's own HERMES_HOME whose config file is displayed under a fixed name.

    Why: the first-run panel prints the config file's path, and a tmp_path differs on every
    run. Only that printed name is fixed; every file the app touches is in ``home``.
    """

    @property
    def config_file(self) -> Path:
        return SHOWN_HOME / "config.yaml"


@pytest.fixture
def threaded_model():
    with FakeOpenAI() as fake:  # its own loop in a thread: snap_compare runs the app's loop
        yield fake


async def _steady(app: HermesApp, pilot) -> None:
    app.query_one(PromptInput).cursor_blink = False
    for field in app.screen.query(Input):  # the first-run form's and the sessions filter
        field.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize(
    ("size", "theme"),
    [((80, 24), "textual-dark"), ((120, 40), "textual-dark"), ((80, 24), "textual-light")],
    ids=["80x24", "120x40", "80x24-light"],
)
def test_first_run_form(snap_compare, hermes_home, size, theme):
    """The first-run form with a server found on this machine (given, not probed)."""
    from hermes_gateway.discovery import FoundServer

    config = load_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
    config.paths = _ShownPaths(hermes_home)  # loaded from the real home, displayed as fixed
    app = HermesApp(quiet(config), discover_servers=False)

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        await wait_until(pilot, lambda: bool(app.main_screen.query("#first-run")))
        panel = app.main_screen.query_one("#first-run")
        found = FoundServer("Ollama", "http://127.0.0.1:11434/v1", ("llama3.1:8b",))
        await panel.show_servers([found])
        app.theme = theme
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_first_run_form_error(snap_compare, hermes_home):
    """A field the form refuses: the message names it and the field is marked."""
    config = load_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
    config.paths = _ShownPaths(hermes_home)
    app = HermesApp(quiet(config), discover_servers=False)

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        await wait_until(pilot, lambda: bool(app.main_screen.query("#first-run")))
        panel = app.main_screen.query_one("#first-run")
        await panel.show_servers([])
        panel.fill("localhost:11434")
        panel.test(save=True)  # what Save does, without the button's press flash
        await wait_until(pilot, lambda: panel.query_one("#setup-status").has_class("-error"))
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_conversation_with_a_tool_running(snap_compare, hermes_home, threaded_model):
    threaded_model.enqueue(
        ScriptedReply(text="Hello! Let me **check** the disk for you."),
        ScriptedReply(
            text="I'll list the files first.",
            tool_calls=[ToolCallSpec("terminal", {"command": "sleep 3 && du -sh ."})],
        ),
    )
    app = HermesApp(quiet(make_config(hermes_home, threaded_model)), discover_servers=False)
    app.animation_level = "none"  # a still spinner: no tick can land between freeze and shot

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        for text in ("hi", "how big is this folder?"):
            app.main_screen.send_text(text)
            await wait_until(pilot, lambda: len(threaded_model.requests) >= 1)
            if text == "hi":
                await app.gateway.runner.wait_idle()
        await wait_until(pilot, lambda: bool(app.main_screen.query(ToolRow)))
        for row in app.main_screen.query(ToolRow):
            row.frame, row.started = 0, time.monotonic()  # frozen spinner, no elapsed time
            row.refresh_row()
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_autocomplete_open(snap_compare, hermes_home, threaded_model):
    app = HermesApp(quiet(make_config(hermes_home, threaded_model)), discover_servers=False)

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        await pilot.press("slash", "s")
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


ANSWER = (
    "## Disk usage\n\n| dir | size |\n|---|---|\n| src | 12M |\n\n"
    "Check it yourself:\n\n```sh\ndu -sh src\n```\n\nAll fine."
)


@pytest.mark.parametrize(
    ("size", "theme"),
    [
        ((80, 24), "textual-dark"),
        ((120, 40), "textual-dark"),
        ((200, 60), "textual-dark"),
        ((80, 24), "textual-light"),
        ((120, 40), "textual-light"),
        ((200, 60), "textual-light"),
    ],
    ids=["80x24", "120x40", "200x60", "80x24-light", "120x40-light", "200x60-light"],
)
def test_conversation_sizes(snap_compare, hermes_home, threaded_model, size, theme):
    """The main screen with a user message, an answer (heading, table, code), at the three
    sizes users run it and in both themes: who wrote what must read at a glance in each."""
    threaded_model.enqueue(ScriptedReply(text=ANSWER))
    app = HermesApp(quiet(make_config(hermes_home, threaded_model)), discover_servers=False)

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        app.theme = theme
        app.main_screen.send_text("how big is src?")
        await wait_until(pilot, lambda: len(threaded_model.requests) >= 1)
        await app.gateway.runner.wait_idle()
        await wait_until(pilot, lambda: not app.main_screen.conversation.streaming)
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_narrow_with_sidebar_open(snap_compare, hermes_home, threaded_model):
    app = HermesApp(quiet(make_config(hermes_home, threaded_model)), discover_servers=False)

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        await pilot.press("f2")
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_search_dialog(snap_compare, hermes_home, threaded_model, size):
    app = HermesApp(quiet(make_config(hermes_home, threaded_model)), discover_servers=False)

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        app.main_screen.send_text("remember the lighthouse keeper")
        await wait_until(pilot, lambda: len(threaded_model.requests) >= 1)
        await app.gateway.runner.wait_idle()
        await pilot.press("f3")
        for ch in "lighthouse":
            await pilot.press(ch)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_help_screen(snap_compare, hermes_home, threaded_model, size):
    app = HermesApp(quiet(make_config(hermes_home, threaded_model)), discover_servers=False)

    async def run_before(pilot) -> None:
        await ready(app, pilot)
        await pilot.press("f1")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
