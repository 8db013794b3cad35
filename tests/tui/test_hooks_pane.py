"""The Hooks pane in the real app (Pilot, real gateway with its hooks feature, scripted model):
loaded hooks, the ones that could not load, and a hook's last error after it failed."""

from __future__ import annotations

from textual.widgets import Static

from hermes_tui.app import HermesApp
from hermes_tui.widgets.hooks_pane import HooksPane
from tests.conftest import make_config
from tests.tui.conftest import ready, wait_until

SIZE = (120, 40)


def pane_text(pane: HooksPane) -> str:
    return str(pane.query_one("#hooks-list", Static).render())


async def test_pane_lists_hooks_problems_and_the_last_error(hermes_home, fake_openai):
    good = hermes_home / "hooks" / "audit"
    good.mkdir(parents=True)
    (good / "HOOK.yaml").write_text("name: audit\nevents: [agent:start, agent:end]\n")
    (good / "handler.py").write_text(
        "def handle(event_type, context):\n"
        "    if event_type == 'agent:end':\n"
        "        raise RuntimeError('audit server down')\n"
    )
    broken = hermes_home / "hooks" / "broken"
    broken.mkdir()
    (broken / "HOOK.yaml").write_text("events: [agent:start]\n")  # and no handler.py
    app = HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.query_one(HooksPane)
        await wait_until(pilot, lambda: "audit" in pane_text(pane))
        assert pane.display and "-empty" not in pane.classes
        text = pane_text(pane)
        assert "audit  agent:start, agent:end" in text
        assert "broken  not loaded: missing handler.py" in text
        assert "audit server down" not in text

        app.main_screen.send_text("hello")
        await wait_until(pilot, lambda: "audit server down" in pane_text(pane))
        assert "agent:end: RuntimeError: audit server down (handler.py, line 3)" in pane_text(pane)


async def test_pane_is_hidden_without_hooks(hermes_home, fake_openai):
    app = HermesApp(make_config(hermes_home, fake_openai), discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.query_one(HooksPane)
        await pilot.pause()
        assert "-empty" in pane.classes and not pane.display
