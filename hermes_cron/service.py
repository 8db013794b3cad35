"""Cron inside a running gateway: the one object the command, the tool and the TUI pane use.

:class:`CronService` ties the job store, the ticker and the run executor to the gateway's
store, runner, router and bus, and publishes a ``CronJobChanged`` event for every change it
makes, so every view stays live. It is built and started by ``Gateway.start`` (as
``gateway.cron``) and stopped before the runner, so running jobs are interrupted and recorded
as such rather than cut off.
"""

from __future__ import annotations

import logging
from datetime import datetime

from hermes_cron.clock import Clock, SystemClock
from hermes_cron.events import CronChange, CronJobChanged
from hermes_cron.jobs import CRON_PLATFORM, OPERATOR, CronError, CronStore, Job, RunRecord, Scope
from hermes_cron.runner import CronJobRunner
from hermes_cron.schedules import ScheduleError, parse_schedule
from hermes_cron.settings import CronSettings
from hermes_cron.ticker import Ticker, owner_liveness
from hermes_gateway.config import Config
from hermes_gateway.delivery.router import DeliveryRouter, TargetError
from hermes_gateway.models import LOCAL_PLATFORM, SessionSource
from hermes_gateway.runner import GatewayRunner

log = logging.getLogger(__name__)

__all__ = ["CronService", "default_name"]


def default_name(prompt: str, limit: int = 32) -> str:
    """A job name from its prompt's first words, for jobs added without one."""
    words = " ".join(prompt.split())
    if len(words) <= limit:
        return words or "job"
    cut = words[:limit].rsplit(" ", 1)[0]
    return (cut or words[:limit]) + "…"


async def create_job(
    store: CronStore,
    router: DeliveryRouter,
    schedule: str,
    prompt: str,
    *,
    now: datetime,
    timezone: str,
    name: str | None = None,
    deliver: str | None = None,
    origin: SessionSource | None = None,
    repeat: int | None = None,
    scope: Scope = OPERATOR,
) -> Job:
    """Validate and store a new job: the one path for the command, the tool and the CLI.

    ``deliver`` defaults to ``origin`` when the request came from a remote chat and to
    ``local`` otherwise. A chat (``scope`` not the operator) may only deliver to itself:
    otherwise any allowed user could make the bot post into any chat.

    Raises:
        CronError: Bad schedule, bad delivery target, empty prompt, or a cron run asking.
    """
    if origin is not None and origin.platform == CRON_PLATFORM:
        raise CronError("A cron run cannot create more cron jobs.")
    prompt = prompt.strip()
    if not prompt:
        raise CronError("The job needs a prompt: what should the agent do?")
    try:
        parsed = parse_schedule(schedule, tz=timezone, now=now)
    except ScheduleError as exc:
        raise CronError(str(exc)) from None
    if deliver is None or not deliver.strip():
        remote = origin is not None and origin.platform != LOCAL_PLATFORM
        deliver = "origin" if remote else "local"
    if not scope.operator and deliver.strip().lower() != "origin":
        raise CronError(
            f"From a chat, a job can only deliver back to this chat (--deliver origin), "
            f"not to “{deliver.strip()}”. Other targets are for the operator."
        )
    try:
        targets = router.check(deliver, origin=origin)
    except TargetError as exc:
        raise CronError(str(exc)) from None
    return await store.add(
        name=(name or "").strip() or default_name(prompt),
        prompt=prompt,
        schedule=parsed,
        now=now,
        deliver=",".join(t.spec for t in targets),
        origin=origin,
        repeat=repeat,
    )


class CronService:
    """Jobs, scheduling and runs for one gateway; see the module docstring.

    Args:
        config: The gateway's configuration (cron settings, output folder, home channels).
        runner: The gateway's runner, already built (its store, bus and adapters are used).
        router: The gateway's delivery router.
        clock: Time source; tests pass a ManualClock.
        settings: Overrides the settings read from ``config``.
    """

    def __init__(
        self,
        config: Config,
        runner: GatewayRunner,
        router: DeliveryRouter,
        *,
        clock: Clock | None = None,
        settings: CronSettings | None = None,
    ) -> None:
        self.config = config
        self.runner = runner
        self.router = router
        self.bus = runner.bus
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or CronSettings.from_config(config)
        self.store = CronStore(runner.store)
        self.executor = CronJobRunner(
            runner,
            router,
            output_dir=config.paths.cron_output_dir,
            settings=self.settings,
            clock=self.clock,
        )
        self.ticker = Ticker(
            self.store, self.executor, settings=self.settings, clock=self.clock, bus=self.bus
        )
        self.started = False

    async def start(self) -> None:
        """Catch up on missed runs and start ticking (unless cron is disabled in config)."""
        if not self.settings.enabled:
            log.info("cron is disabled in the configuration")
            return
        await self.ticker.start()
        self.started = True

    async def stop(self, timeout: float = 10.0) -> None:
        """Interrupt running jobs, wait for them to record it, stop ticking."""
        for job_id in list(self.ticker.running):
            self.runner.interrupt(self._key(job_id))
        await self.ticker.stop(timeout=timeout)
        self.started = False

    def now(self) -> datetime:
        return self.clock.now()

    # --- queries ------------------------------------------------------------------------

    async def list_jobs(self, scope: Scope = OPERATOR) -> list[Job]:
        """The jobs ``scope`` may see (all of them for the operator)."""
        return [j for j in await self.store.list() if scope.sees(j)]

    async def find(self, ref: str, scope: Scope = OPERATOR) -> Job:
        """A job by id, id prefix or name among those ``scope`` sees (CronError if none)."""
        return await self.store.find(ref, scope)

    async def runs(self, job_id: str, limit: int = 20) -> list[RunRecord]:
        return await self.store.runs(job_id, limit)

    def is_running(self, job: Job) -> bool:
        """Running here or in another process on the same database."""
        return job.id in self.ticker.running or job.is_running(self.clock.now(), owner_liveness)

    # --- changes ------------------------------------------------------------------------

    async def add(
        self,
        schedule: str,
        prompt: str,
        *,
        name: str | None = None,
        deliver: str | None = None,
        origin: SessionSource | None = None,
        repeat: int | None = None,
        scope: Scope = OPERATOR,
    ) -> Job:
        """Create a job (see :func:`create_job`) and announce it."""
        job = await create_job(
            self.store,
            self.router,
            schedule,
            prompt,
            now=self.clock.now(),
            timezone=self.settings.timezone,
            name=name,
            deliver=deliver,
            origin=origin,
            repeat=repeat,
            scope=scope,
        )
        self._changed(job, "added")
        return job

    async def pause(self, ref: str, scope: Scope = OPERATOR) -> Job:
        job = await self.store.pause((await self.find(ref, scope)).id, self.clock.now())
        self._changed(job, "paused")
        return job

    async def resume(self, ref: str, scope: Scope = OPERATOR) -> Job:
        job = await self.store.resume((await self.find(ref, scope)).id, self.clock.now())
        self._changed(job, "resumed")
        return job

    async def remove(self, ref: str, scope: Scope = OPERATOR) -> Job:
        """Delete a job (stopping its run if one is going here); outputs stay on disk."""
        job = await self.find(ref, scope)
        self.runner.interrupt(self._key(job.id))
        await self.store.remove(job.id)
        self._changed(job, "removed")
        return job

    async def run_now(self, ref: str, scope: Scope = OPERATOR) -> Job:
        """Start a run at once (paused jobs too); returns the job as claimed.

        Raises:
            CronError: Unknown job, already running, or cron is disabled here.
        """
        job = await self.find(ref, scope)
        if not self.started:
            raise CronError("The scheduler is not running in this gateway (cron.enabled).")
        claim = await self.ticker.run_now(job.id)
        return claim.job

    def _changed(self, job: Job, change: CronChange) -> None:
        self.bus.publish(CronJobChanged(job_id=job.id, change=change, name=job.name))

    @staticmethod
    def _key(job_id: str) -> str:
        return SessionSource(platform=CRON_PLATFORM, chat_id=job_id, chat_type="dm").session_key
