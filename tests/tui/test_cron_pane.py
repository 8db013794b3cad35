"""The Cron pane: live in the real app (Pilot, real gateway, scripted model) and an SVG snapshot.

The snapshot hosts the pane alone, styled by the app's stylesheet, over a real store and cron
service with a ManualClock, so countdowns and statuses are the same on every run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList

import hermes_tui
from hermes_cron.clock import ManualClock
from hermes_cron.schedules import parse_schedule
from hermes_cron.service import CronService
from hermes_gateway.agent.loop import Agent
from hermes_gateway.agent.provider import ProviderPool
from hermes_gateway.agent.tools.registry import ToolRegistry
from hermes_gateway.commands.builtin import build_registry
from hermes_gateway.config import Config
from hermes_gateway.delivery.router import DeliveryRouter
from hermes_gateway.events import EventBus
from hermes_gateway.runner import GatewayRunner
from hermes_gateway.store import SessionStore
from hermes_tui.app import HermesApp
from hermes_tui.widgets.cron_pane import CronList, CronOutputScreen, CronPane
from hermes_tui.widgets.prompt_input import PromptInput
from tests.conftest import make_config
from tests.fakes.openai_server import ScriptedReply
from tests.tui.conftest import ready, wait_until

SIZE = (120, 36)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def row_text(pane: CronPane, index: int = 0) -> str:
    return str(pane.rows.get_option_at_index(index).prompt)


async def test_pane_shows_jobs_live_and_its_keys_control_them(hermes_home, fake_openai):
    config = make_config(hermes_home, fake_openai, HERMES_TIMEZONE="UTC")
    app = HermesApp(config, discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.query_one(CronPane)
        empty = pane.query_one("#cron-empty")
        assert empty.display and not pane.rows.display

        app.main_screen.send_text('/cron add --name Greeter "every 1h" say hi')
        await wait_until(pilot, lambda: len(pane.jobs) == 1)
        (job_id,) = pane.jobs
        await pilot.pause()
        assert pane.rows.display and not empty.display
        text = row_text(pane)
        assert "Greeter" in text and "in 1 h" in text and "every hour" in text

        # r: run now; the row says so while the (slow) answer streams, then shows the result.
        fake_openai.enqueue(ScriptedReply(text="hi there, all fine", chunk_size=2, delay=0.03))
        pane.rows.focus()
        await pilot.press("r")
        await wait_until(pilot, lambda: "running" in row_text(pane))
        assert row_text(pane).startswith("▶")
        await wait_until(pilot, lambda: pane.jobs[job_id].last_status == "ok", timeout=10)
        await pilot.pause()
        assert "· ok" in row_text(pane) and "running" not in row_text(pane)

        # o: the last output, as saved in HERMES_HOME/cron/output/<job>/.
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, CronOutputScreen))
        assert "hi there, all fine" in app.screen.text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, CronOutputScreen))

        # p: pause and resume.
        pane.rows.focus()
        await pilot.press("p")
        await wait_until(pilot, lambda: not pane.jobs[job_id].enabled)
        await pilot.pause()
        assert "paused" in row_text(pane) and row_text(pane).startswith("‖")
        await pilot.press("p")
        await wait_until(pilot, lambda: pane.jobs[job_id].enabled)

        # d: delete, only when pressed twice.
        await pilot.press("d")
        await pilot.pause(0.1)
        assert job_id in pane.jobs
        await pilot.press("d")
        await wait_until(pilot, lambda: not pane.jobs)
        await pilot.pause()
        assert empty.display and not pane.rows.display
        assert isinstance(pane.rows, CronList)


class CronPaneApp(App[None]):
    """The pane alone in the sidebar, over a real store and cron service."""

    CSS_PATH = str(Path(hermes_tui.__file__).parent / "hermes.tcss")

    def __init__(self, config: Config, clock: ManualClock) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.store: SessionStore | None = None
        self.service: CronService | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="sidebar"):
            yield CronPane(id="cron")

    async def setup(self) -> CronService:
        self.store = await SessionStore.open(self.config.paths.database)
        agent = Agent(ProviderPool(), ToolRegistry())
        runner = GatewayRunner(self.config, self.store, EventBus(), agent, build_registry())
        router = DeliveryRouter(self.config, runner.adapters)
        self.service = CronService(self.config, runner, router, clock=self.clock)
        return self.service

    async def on_unmount(self) -> None:
        if self.store is not None:
            await self.store.close()


def test_cron_pane_snapshot(snap_compare, hermes_home):
    config = make_config(hermes_home, HERMES_TIMEZONE="UTC")
    clock = ManualClock(T0)
    app = CronPaneApp(config, clock)

    async def run_before(pilot) -> None:
        service = await app.setup()
        cron = service.store
        now = clock.now()

        async def add(name: str, schedule: str, **kw):
            parsed = parse_schedule(schedule, tz="UTC", now=now)
            return await cron.add(name=name, prompt=name, schedule=parsed, now=now, **kw)

        disks = await add("Disk check", "every 30m")
        await cron.claim_now(disks.id, now, owner=service.ticker.owner, lease_s=60)
        backup = await add("Backup report", "every 1d", deliver="telegram")
        claim = await cron.claim_now(backup.id, now, owner="x", lease_s=60)
        await cron.finish_run(
            backup.id,
            claim.run.id,
            owner="x",
            now=now,
            status="ok",
            delivery_status="failed",
            delivery_error="telegram: blocked",
        )
        tea = await add("Tea", "in 45m")
        await cron.pause(tea.id, now)
        clock.advance(timedelta(minutes=5))
        pane = app.query_one(CronPane)
        pane.attach(service)
        await wait_until(pilot, lambda: len(pane.jobs) == 3)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(36, 12), run_before=run_before)


async def test_a_run_delivered_here_notifies_and_shows_its_answer(hermes_home, fake_openai):
    """deliver=local: no chat gets the answer, so the app shows it (F9 and the Cron pane);
    a failed run still notifies as an error, and a [SILENT] answer shows nothing."""
    config = make_config(hermes_home, fake_openai, HERMES_TIMEZONE="UTC")
    app = HermesApp(config, discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        pane = screen.query_one(CronPane)
        screen.send_text('/cron add --name Disks --deliver local "every 1h" check the disks')
        await wait_until(pilot, lambda: len(pane.jobs) == 1)
        (job_id,) = pane.jobs
        assert pane.jobs[job_id].deliver == "local"

        fake_openai.enqueue(ScriptedReply(text="All 3 disks are healthy.\n\nsda: 41% used"))
        await app.gateway.cron.run_now(job_id)  # the cron feature's API, as `r` does
        await wait_until(pilot, lambda: screen.notifications.unseen == 1, timeout=10)
        (note,) = screen.notifications.items
        assert note.title == "⏰ Disks" and note.severity == "information"
        assert note.detail == "All 3 disks are healthy. sda: 41% used"
        await wait_until(pilot, lambda: "↳" in row_text(pane))
        # The third line of the row, cut to the sidebar's width.
        assert row_text(pane).splitlines()[2].strip().startswith("↳ All 3 disks are healthy.")

        # F9 lists it; Enter on it opens the whole output.
        from hermes_tui.screens.notifications import NotificationsScreen

        screen.query_one(PromptInput).focus()
        await pilot.press("f9")
        await wait_until(pilot, lambda: isinstance(app.screen, NotificationsScreen))
        assert "Disks" in str(app.screen.query_one(OptionList).get_option_at_index(0).prompt)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CronOutputScreen))
        assert "sda: 41% used" in app.screen.text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, CronOutputScreen))

        # A failed run: an error entry as before, and the old answer is no longer shown.
        fake_openai.enqueue(ScriptedReply(status=400, error_message="model overloaded today"))
        await app.gateway.cron.run_now(job_id)
        await wait_until(pilot, lambda: len(screen.notifications.items) == 2, timeout=10)
        failed = screen.notifications.items[0]
        assert failed.severity == "error" and "Disks: error" in failed.title
        assert "model overloaded today" in failed.detail
        await wait_until(pilot, lambda: "· error" in row_text(pane))
        assert "↳" not in row_text(pane)

        # Nothing worth reporting: no entry, no line.
        fake_openai.enqueue(ScriptedReply(text="[SILENT]"))
        await app.gateway.cron.run_now(job_id)
        await wait_until(pilot, lambda: "· ok" in row_text(pane), timeout=10)
        await pilot.pause()
        assert len(screen.notifications.items) == 2 and "↳" not in row_text(pane)

        fake_openai.enqueue(ScriptedReply(text="Disk sdb is 97% full!"))
        await app.gateway.cron.run_now(job_id)
        await wait_until(pilot, lambda: len(screen.notifications.items) == 3, timeout=10)

    # Started again on the same home: the last answer is read back from its output file.
    app = HermesApp(config, discover_servers=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.query_one(CronPane)
        await wait_until(pilot, lambda: bool(pane.jobs) and "↳" in row_text(pane))
        assert row_text(pane).splitlines()[2].strip().startswith("↳ Disk sdb is 97%")
        assert not app.main_screen.notifications.items  # no run happened in this app


def test_cron_pane_snapshot_with_an_answer_delivered_here(snap_compare, hermes_home):
    from hermes_cron.runner import write_output
    from hermes_cron.ticker import RunOutcome

    config = make_config(hermes_home, HERMES_TIMEZONE="UTC")
    clock = ManualClock(T0)
    app = CronPaneApp(config, clock)

    async def run_before(pilot) -> None:
        service = await app.setup()
        cron = service.store
        now = clock.now()
        parsed = parse_schedule("every 1d", tz="UTC", now=now)
        job = await cron.add(name="Morning news", prompt="news", schedule=parsed, now=now)
        claim = await cron.claim_now(job.id, now, owner="x", lease_s=60)
        answer = "Three things today: the release is out, CI is green, and it rains."
        path = write_output(
            config.paths.cron_output_dir / job.id,
            now,
            job,
            "news",
            RunOutcome("ok", text=answer),
            "manual",
        )
        await cron.finish_run(
            job.id,
            claim.run.id,
            owner="x",
            now=now,
            status="ok",
            delivery_status="local",
            output_path=str(path),
        )
        clock.advance(timedelta(minutes=5))
        pane = app.query_one(CronPane)
        pane.attach(service)
        await wait_until(pilot, lambda: bool(pane.jobs) and "↳" in row_text(pane))
        await pilot.pause()

    assert snap_compare(app, terminal_size=(36, 8), run_before=run_before)
