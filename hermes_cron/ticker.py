"""The scheduler inside the gateway: wakes on minute boundaries and starts due jobs.

One :class:`Ticker` runs in every gateway process (TUI or headless). Each tick it

1. marks runs of crashed processes ``interrupted`` (never re-runs them),
2. claims due jobs in one transaction (next run advanced, lease taken: see
   :mod:`hermes_cron.jobs`) and records slots missed beyond the grace window,
3. starts each claimed job as a task that renews the lease while the executor works, and
   records the outcome when it ends.

At start it ticks once at once, so runs missed while nothing was running are caught up (or
recorded as missed) without waiting for the next minute. Time comes from an injectable
:class:`~hermes_cron.clock.Clock`; tests drive :meth:`Ticker.tick` with a ManualClock.

The executor (what a run *does*) is injected too: the gateway's is
:class:`hermes_cron.runner.CronJobRunner`; the crash test's one blocks forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from hermes_cron.clock import Clock, SystemClock, next_minute
from hermes_cron.events import CronJobChanged, CronRunFinished, CronRunStarted
from hermes_cron.jobs import Claim, CronStore
from hermes_cron.settings import CronSettings
from hermes_gateway import events as ev

log = logging.getLogger(__name__)

__all__ = ["Executor", "Liveness", "RunOutcome", "Ticker", "make_owner", "owner_liveness"]


@dataclass
class RunOutcome:
    """What an executor reports about one run.

    ``status`` is the task's own result; ``delivery_status`` (see
    :func:`hermes_gateway.delivery.router.summarize`) is recorded apart from it.
    """

    status: Literal["ok", "error", "interrupted"]
    error: str | None = None
    delivery_status: str | None = None
    delivery_error: str | None = None
    output_path: str | None = None
    text: str = ""
    local_text: str | None = None
    """The answer, when one of the job's targets was this machine (``local``, or an origin in
    the terminal): the app shows it, as no chat did."""


Executor = Callable[[Claim], Awaitable[RunOutcome]]
Liveness = Literal["alive", "dead", "unknown"]


def make_owner() -> str:
    """A lease owner id: ``host/pid/random`` (the random part tells apart two tickers)."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


_LIVE_OWNERS: set[str] = set()
"""Owners of the tickers running in this process (several in tests: two gateways, one pid)."""


def owner_liveness(owner: str) -> Liveness:
    """Whether the process behind a lease owner id still runs: alive, dead or unknown.

    Certain on this machine (this process's live tickers, or a signal-0 probe of the pid);
    unknown for another machine's owner (a shared network home), whose lease then simply has
    to run out.
    """
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return "unknown"
    pid = int(pid_text)
    if pid == os.getpid():
        return "alive" if owner in _LIVE_OWNERS else "dead"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except OSError:  # PermissionError: it exists, owned by someone else
        return "alive"
    return "alive"


class Ticker:
    """Claims and runs due jobs; see the module docstring.

    Args:
        store: The jobs.
        execute: Runs one claimed job and returns its outcome (should not raise; if it
            does, the run is recorded as an error).
        settings: Grace window and lease length.
        clock: Time source (the wall clock by default).
        bus: Where CronRunStarted / CronRunFinished / CronJobChanged go.
        owner: Lease owner id; one per ticker (the default is unique per process and call).
    """

    def __init__(
        self,
        store: CronStore,
        execute: Executor,
        *,
        settings: CronSettings | None = None,
        clock: Clock | None = None,
        bus: ev.EventBus | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.execute = execute
        self.settings = settings or CronSettings()
        self.clock: Clock = clock or SystemClock()
        self.bus = bus
        self.owner = owner or make_owner()
        _LIVE_OWNERS.add(self.owner)
        self.running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()
        self.ticks = 0
        """Completed scheduling passes."""

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, *, loop: bool = True) -> None:
        """Catch up (one tick now), then wake on every minute boundary if ``loop``."""
        await self.tick()
        if loop and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="cron-ticker")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop ticking and wait for running jobs (interrupt them first to be quick).

        Afterwards this ticker's owner id counts as dead, so anything it left running is
        recovered as interrupted by the next ticker.
        """
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = list(self.running.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        _LIVE_OWNERS.discard(self.owner)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no job of this ticker is running (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self.running:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cron jobs still running: {', '.join(self.running)}")
            await asyncio.wait(list(self.running.values()), timeout=remaining)

    async def _loop(self) -> None:
        while True:
            await self.clock.sleep_until(next_minute(self.clock.now()))
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cron tick failed")

    # --- one pass -----------------------------------------------------------------------

    async def tick(self) -> list[Claim]:
        """One scheduling pass at ``clock.now()``; returns the claims it started."""
        async with self._tick_lock:
            now = self.clock.now()
            for run in await self.store.recover_stale(
                now, owner=self.owner, liveness=owner_liveness
            ):
                log.warning("cron run %s of job %s was interrupted by a crash", run.id, run.job_id)
                self._publish(
                    CronRunFinished(
                        job_id=run.job_id,
                        name="",
                        run_id=run.id,
                        status="interrupted",
                        error=run.error,
                    )
                )
            claims, missed = await self.store.claim_due(
                now,
                grace_s=self.settings.grace.total_seconds(),
                owner=self.owner,
                lease_s=self.settings.lease_seconds,
                liveness=owner_liveness,
            )
            for job, run in missed:
                log.warning("cron job %s (%s): %s", job.id, job.name, run.error)
                self._publish(
                    CronRunFinished(
                        job_id=job.id,
                        name=job.name,
                        run_id=run.id,
                        status="missed",
                        error=run.error,
                    )
                )
            for claim in claims:
                self._start(claim)
            with contextlib.suppress(Exception):
                await self.store.beat(self.owner, now)
            self.ticks += 1  # completed passes: tests wait on it
            return claims

    async def run_now(self, job_id: str) -> Claim:
        """Run a job at once, outside its schedule (its next run stays as it was).

        Raises:
            CronError: No such job, or it is already running somewhere.
        """
        claim = await self.store.claim_now(
            job_id,
            self.clock.now(),
            owner=self.owner,
            lease_s=self.settings.lease_seconds,
            liveness=owner_liveness,
        )
        self._start(claim)
        return claim

    def _start(self, claim: Claim) -> None:
        task = asyncio.create_task(self._run(claim), name=f"cron:{claim.job.id}")
        self.running[claim.job.id] = task
        task.add_done_callback(functools.partial(self._forget, claim.job.id))

    def _forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self.running.get(job_id) is task:
            del self.running[job_id]

    async def _run(self, claim: Claim) -> None:
        job, run = claim.job, claim.run
        started = time.monotonic()
        self._publish(
            CronRunStarted(
                job_id=job.id,
                name=job.name,
                run_id=run.id,
                session_key=job.session_key,
                trigger=run.trigger,
            )
        )
        heartbeat = asyncio.create_task(self._heartbeat(job.id), name=f"cron-lease:{job.id}")
        cancelled = False
        try:
            outcome = await self.execute(claim)
        except asyncio.CancelledError:
            cancelled = True
            outcome = RunOutcome("interrupted", "the run was cancelled")
        except Exception as exc:
            log.exception("cron job %s failed", job.id)
            outcome = RunOutcome("error", f"{type(exc).__name__}: {exc}")
        finally:
            heartbeat.cancel()
        try:
            result = await asyncio.shield(
                self.store.finish_run(
                    job.id,
                    run.id,
                    owner=self.owner,
                    now=self.clock.now(),
                    status=outcome.status,
                    error=outcome.error,
                    delivery_status=outcome.delivery_status,
                    delivery_error=outcome.delivery_error,
                    output_path=outcome.output_path,
                )
            )
        except Exception:
            log.exception("could not record the run of cron job %s", job.id)
            return
        self._publish(
            CronRunFinished(
                job_id=job.id,
                name=job.name,
                run_id=run.id,
                status=outcome.status,
                error=outcome.error,
                delivery_status=outcome.delivery_status,
                delivery_error=outcome.delivery_error,
                output_path=outcome.output_path,
                local_text=outcome.local_text,
                duration=time.monotonic() - started,
                job_removed=result.removed,
            )
        )
        if result.removed:
            self._publish(CronJobChanged(job_id=job.id, change="removed", name=job.name))
        if cancelled:
            raise asyncio.CancelledError

    async def _heartbeat(self, job_id: str) -> None:
        """Keep the lease while the run lasts (a crashed process stops renewing it)."""
        period = timedelta(seconds=self.settings.lease_seconds / 3)
        while True:
            await self.clock.sleep_until(self.clock.now() + period)
            until = self.clock.now() + timedelta(seconds=self.settings.lease_seconds)
            try:
                if not await self.store.renew_lease(job_id, self.owner, until):
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not renew the lease of cron job %s", job_id, exc_info=True)

    def _publish(self, event: ev.GatewayEvent) -> None:
        if self.bus is not None:
            self.bus.publish(event)
