"""The Cron pane: scheduled jobs, live.

Each job shows its name, its schedule in words, the countdown to its next run (or "running",
"paused") and how its last run went, with delivery failures called out apart from the run.
A run delivered to ``local`` (no chat received it) adds a third line, the start of its answer.
Keys on the list: ``r`` run now, ``p`` pause / resume, ``d`` delete (press twice), ``enter`` /
``o`` open the last output.

The pane reads jobs from the gateway's :class:`~hermes_cron.service.CronService` (the store),
reloads them on every cron event from the bus and once a minute (the ``hermes cron`` CLI may
change jobs from another process), and redraws countdowns every few seconds without a query.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from hermes_cron.events import CronRunFinished, CronRunStarted
from hermes_cron.schedules import format_countdown
from hermes_gateway import events as ev
from hermes_gateway.delivery.router import is_silent
from hermes_gateway.text import one_line
from hermes_tui import gateway_messages as gm

if TYPE_CHECKING:
    from hermes_cron.jobs import Job
    from hermes_cron.service import CronService

LAST_STYLE = {
    "ok": "green",
    "error": "red",
    "missed": "red",
    "interrupted": "yellow",
}
DELETE_CONFIRM_SECONDS = 3.0


class CronList(OptionList):
    """The job rows; holds the keys so they work whenever the list has focus."""

    BINDINGS = [
        Binding("r", "run_job", "Run now"),
        Binding("p", "toggle_job", "Pause/resume"),
        Binding("d,delete", "delete_job", "Delete"),
        Binding("o", "open_output", "Last output"),
    ]

    def _pane(self) -> CronPane:
        pane = self.parent
        assert isinstance(pane, CronPane)
        return pane

    def _job_id(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None

    def action_run_job(self) -> None:
        if (job_id := self._job_id()) is not None:
            self._pane().run_job(job_id)

    def action_toggle_job(self) -> None:
        if (job_id := self._job_id()) is not None:
            self._pane().toggle_job(job_id)

    def action_delete_job(self) -> None:
        if (job_id := self._job_id()) is not None:
            self._pane().delete_job(job_id)

    def action_open_output(self) -> None:
        if (job_id := self._job_id()) is not None:
            self._pane().open_output(job_id)

    def on_resize(self) -> None:
        self._pane().redraw()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self._pane().open_output(event.option.id)


class CronOutputScreen(ModalScreen[None]):
    """The last output of a job, as the Markdown file saved for it."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="cron-output"):
            yield Markdown(self.text)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cron-output").border_title = self.title_text

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class CronPane(Vertical):
    """Scheduled jobs; an empty state until a job exists."""

    BORDER_TITLE = "Cron"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.service: CronService | None = None
        self.jobs: dict[str, Job] = {}
        self.running: set[str] = set()
        self.answers: dict[str, tuple[str | None, str]] = {}
        """Job id -> (output file, answer) of its last run delivered to ``local``."""
        self._delete_armed: tuple[str, float] | None = None

    def compose(self) -> ComposeResult:
        yield Static("No scheduled jobs.", classes="empty", id="cron-empty")
        rows = CronList(id="cron-list", compact=True)
        rows.display = False
        yield rows

    @property
    def rows(self) -> CronList:
        return self.query_one(CronList)

    # --- data -------------------------------------------------------------------------

    def attach(self, service: CronService) -> None:
        """Start showing ``service``'s jobs (called once the gateway runs)."""
        self.service = service
        self.reload()
        self.set_interval(5, self.redraw, name="cron-countdown")
        self.set_interval(60, self.reload, name="cron-reload")

    @on(gm.CronJobChanged)
    @on(gm.CronRunStarted)
    @on(gm.CronRunFinished)
    def _on_cron_message(self, message: gm.GatewayMessage) -> None:
        self.on_cron_event(message.event)

    def on_cron_event(self, event: ev.GatewayEvent) -> None:
        """Route a cron event from the bus: note runs, reload, tell the person."""
        match event:
            case CronRunStarted(job_id=job_id):
                self.running.add(job_id)
            case CronRunFinished(job_id=job_id):
                self.running.discard(job_id)
                if event.local_text is not None:
                    self.answers[job_id] = (event.output_path, event.local_text)
                elif event.status != "missed":
                    self.answers.pop(job_id, None)  # that answer is no longer the last
                if event.name:  # runs found interrupted after a crash have no name: no toast
                    self._announce(event)
        self.reload()

    def _announce(self, event: CronRunFinished) -> None:
        if event.status == "ok" and event.local_text is not None:
            self.notify(f"⏰ {event.name}: {one_line(event.local_text, 160)}", timeout=6)
        elif event.status == "ok" and event.delivery_status not in ("failed", "partial"):
            self.notify(f"⏰ {event.name}: done", timeout=3)
        elif event.status == "ok":
            self.notify(
                f"⏰ {event.name}: done, but not delivered ({event.delivery_error})",
                severity="warning",
            )
        else:
            detail = f": {event.error}" if event.error else ""
            self.notify(f"⏰ {event.name}: {event.status}{detail}", severity="error")

    @work(exclusive=True, group="cron-reload", exit_on_error=False)
    async def reload(self) -> None:
        """Re-read the jobs from the store and redraw."""
        if self.service is None:
            return
        jobs = await self.service.list_jobs()
        self.jobs = {job.id: job for job in jobs}
        self.running = {job.id for job in jobs if self.service.is_running(job)}
        await self._read_answers(jobs)
        self.redraw()

    async def _read_answers(self, jobs: list[Job]) -> None:
        """Answers of last runs delivered here that no event brought (a run before this app
        started, or by another process): read from their output files, off the loop."""
        from hermes_cron.runner import read_answer

        for job in jobs:
            known = self.answers.get(job.id)
            if known is not None and known[0] == job.last_output:
                continue  # the last run's answer is here already
            self.answers.pop(job.id, None)  # a later run (elsewhere) replaced it
            local = job.last_status == "ok" and job.last_delivery_status == "local"
            if not local or not job.last_output:
                continue
            answer = await asyncio.to_thread(read_answer, Path(job.last_output))
            if answer is not None and not is_silent(answer):
                self.answers[job.id] = (job.last_output, answer)

    def redraw(self) -> None:
        """Rebuild the rows from the loaded jobs (countdowns move on)."""
        empty = not self.jobs
        self.query_one("#cron-empty").display = empty
        rows = self.rows
        rows.display = not empty
        if empty or self.service is None:
            rows.clear_options()
            return
        now = self.service.now()
        highlighted = rows.highlighted_option.id if rows.highlighted_option else None
        ordered = sorted(self.jobs.values(), key=_order)
        width = rows.scrollable_content_region.width
        rows.clear_options()
        rows.add_options([Option(self._label(job, now, width), id=job.id) for job in ordered])
        index = next((i for i, j in enumerate(ordered) if j.id == highlighted), 0)
        rows.highlighted = index

    def _label(self, job: Job, now: datetime, width: int) -> Text:
        """Two lines: mark, name and when; the schedule in words and the last result; a third
        with the start of the last answer when it was delivered here.

        Each line is cut to the list's width with an ellipsis rather than wrapped, so every
        job keeps its lines.
        """
        running = job.id in self.running
        text = Text()
        if running:
            text.append("▶ ", style="bold yellow")
        elif not job.enabled:
            text.append("‖ ", style="blue")
        elif job.last_status in ("error", "missed"):
            text.append("✗ ", style="red")
        else:
            text.append("● ", style="green")
        text.append(job.name, style="bold")
        if running:
            text.append("  running…", style="yellow")
        elif not job.enabled:
            text.append("  finished" if job.state == "done" else "  paused", style="dim")
        elif job.run_requested_at is not None:
            text.append("  run requested", style="yellow")
        elif job.next_run is not None:
            text.append(f"  {format_countdown(job.next_run, now)}", style="cyan")
        detail = Text("  ")
        detail.append(job.describe(now if job.enabled else None), style="dim")
        last = job.last_status
        if last and last != "running":
            detail.append(" · ", style="dim")
            detail.append(last, style=LAST_STYLE.get(last, "dim"))
        if job.last_delivery_status in ("failed", "partial"):
            detail.append(" · ", style="dim")
            detail.append("not delivered", style="red")
        lines = [text, detail]
        if (answer := self.answers.get(job.id)) is not None:
            lines.append(Text.assemble(("  ↳ ", "dim"), one_line(answer[1], max(width, 20))))
        if width > 0:
            for line in lines:
                line.truncate(width, overflow="ellipsis")
        return Text("\n").join(lines)

    # --- actions ----------------------------------------------------------------------

    def run_job(self, job_id: str) -> None:
        self._act("run", job_id)

    def toggle_job(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None:
            self._act("pause" if job.enabled else "resume", job_id)

    def delete_job(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        armed = self._delete_armed
        if armed and armed[0] == job_id and time.monotonic() - armed[1] < DELETE_CONFIRM_SECONDS:
            self._delete_armed = None
            self._act("remove", job_id)
            return
        self._delete_armed = (job_id, time.monotonic())
        self.notify(f"Press d again to delete “{job.name}”.", timeout=DELETE_CONFIRM_SECONDS)

    @work(group="cron-action", exit_on_error=False)
    async def _act(self, action: str, job_id: str) -> None:
        from hermes_cron.jobs import CronError

        if self.service is None:
            return
        method = {
            "run": self.service.run_now,
            "pause": self.service.pause,
            "resume": self.service.resume,
            "remove": self.service.remove,
        }[action]
        try:
            job = await method(job_id)
        except CronError as exc:
            self.notify(str(exc), severity="error")
            return
        if action == "run":
            self.running.add(job.id)
        done = {"run": "started", "pause": "paused", "resume": "resumed", "remove": "deleted"}
        self.notify(f"“{job.name}” {done[action]}.", timeout=3)
        self.reload()

    @work(group="cron-action", exit_on_error=False)
    async def open_output(self, job_id: str) -> None:
        """Show the job's last output file in a modal."""
        job = self.jobs.get(job_id)
        if job is None:
            return
        if not job.last_output:
            self.notify(f"“{job.name}” has no output yet.", timeout=3)
            return
        path = Path(job.last_output)
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot read {path}: {exc.strerror or exc}", severity="error")
            return
        await self.app.push_screen(CronOutputScreen(f"{job.name} · {path.name}", text))


def _order(job: Job) -> tuple[int, float, str]:
    """Active jobs by next run, then paused and finished ones by name."""
    if job.enabled and job.next_run is not None:
        return (0, job.next_run.timestamp(), job.name.casefold())
    return (1, 0.0, job.name.casefold())
