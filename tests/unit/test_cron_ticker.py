"""The cron ticker with an injected clock: due, not due, missed runs, one-shots, repeats,
leases between two tickers on one database, and recovery of a crashed owner's run.

Real SQLite files through the real store; only time (ManualClock) and the executor (what a
run does) are stand-ins, both injection points of the ticker.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hermes_cron.clock import ManualClock
from hermes_cron.events import CronJobChanged, CronRunFinished, CronRunStarted
from hermes_cron.jobs import Claim, CronError, CronStore
from hermes_cron.schedules import parse_schedule
from hermes_cron.settings import CronSettings
from hermes_cron.ticker import RunOutcome, Ticker, owner_liveness
from hermes_gateway import events as ev
from hermes_gateway.store import SessionStore
from tests.helpers import Recorder

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
SETTINGS = CronSettings(timezone="UTC", grace_minutes=15, lease_seconds=120)


class Executor:
    """Records claims; optionally waits for ``gate`` and returns ``outcome``."""

    def __init__(self, outcome: RunOutcome | None = None) -> None:
        self.calls: list[Claim] = []
        self.outcome = outcome or RunOutcome("ok", delivery_status="local", text="done")
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self, claim: Claim) -> RunOutcome:
        self.calls.append(claim)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    yield tmp_path / "hermes_tui.db"


@pytest.fixture
async def cron(db: Path) -> AsyncIterator[CronStore]:
    store = await SessionStore.open(db)
    yield CronStore(store)
    await store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def add(cron: CronStore, schedule: str, *, at: datetime = T0, **kw) -> str:
    parsed = parse_schedule(schedule, tz="UTC", now=at)
    job = await cron.add(name=kw.pop("name", schedule), prompt="p", schedule=parsed, now=at, **kw)
    return job.id


def ticker(cron: CronStore, clock: ManualClock, executor: Executor, **kw) -> Ticker:
    return Ticker(cron, executor, settings=SETTINGS, clock=clock, **kw)


async def run_tick(t: Ticker) -> list[Claim]:
    claims = await t.tick()
    await t.wait_idle(5)
    return claims


async def test_not_due_then_due(cron, clock):
    job_id = await add(cron, "every 1h")
    ex = Executor()
    t = ticker(cron, clock, ex)
    clock.set(T0 + timedelta(minutes=59))
    assert await run_tick(t) == []
    clock.set(T0 + timedelta(hours=1))
    (claim,) = await run_tick(t)
    assert claim.run.trigger == "schedule" and claim.run.scheduled_for == T0 + timedelta(hours=1)
    job = await cron.get(job_id)
    assert job is not None
    assert job.next_run == T0 + timedelta(hours=2)
    assert (job.runs, job.last_status, job.last_delivery_status) == (1, "ok", "local")
    assert job.lease_owner is None  # released when the run ended
    (run,) = await cron.runs(job_id)
    assert (run.status, run.delivery_status) == ("ok", "local")
    assert len(ex.calls) == 1


async def test_next_run_is_advanced_before_the_executor_starts(cron, clock):
    job_id = await add(cron, "every 1h")
    ex = Executor()
    ex.gate = asyncio.Event()
    t = ticker(cron, clock, ex)
    clock.set(T0 + timedelta(hours=1))
    await t.tick()
    await ex.started.wait()
    job = await cron.get(job_id)
    assert job is not None and job.next_run == T0 + timedelta(hours=2)
    assert job.last_status == "running" and job.is_running(clock.now())
    assert [r.status for r in await cron.runs(job_id)] == ["running"]
    ex.gate.set()
    await t.wait_idle()


async def test_loop_wakes_on_minute_boundaries(cron, clock):
    clock.set(T0 + timedelta(seconds=10))
    await add(cron, "every 1m", at=clock.now())  # due at 08:01:10 -> runs at the 08:02 tick
    ex = Executor()
    t = ticker(cron, clock, ex)
    await t.start()
    try:
        assert t.ticks == 1
        await _until(lambda: clock.sleepers >= 1)
        clock.set(T0 + timedelta(minutes=1))
        await _until(lambda: t.ticks == 2)
        assert ex.calls == []
        clock.set(T0 + timedelta(minutes=1, seconds=59))
        await asyncio.sleep(0.01)
        assert t.ticks == 2  # nothing between boundaries
        clock.set(T0 + timedelta(minutes=2))
        await _until(lambda: len(ex.calls) == 1)
        await t.wait_idle()
    finally:
        await t.stop()


async def test_missed_within_grace_runs_once_at_start(cron, clock):
    job_id = await add(cron, "every 1m")
    clock.set(T0 + timedelta(minutes=10, seconds=30))  # ten slots missed, the oldest 9.5 min ago
    ex = Executor()
    t = ticker(cron, clock, ex)
    await t.start(loop=False)
    await t.wait_idle()
    assert len(ex.calls) == 1
    job = await cron.get(job_id)
    assert job is not None and job.next_run == T0 + timedelta(minutes=11)
    assert [r.status for r in await cron.runs(job_id)] == ["ok"]


async def test_missed_beyond_grace_is_recorded_not_run(cron, clock):
    job_id = await add(cron, "every 1h")
    clock.set(T0 + timedelta(hours=3, minutes=30))  # due 09:00, 2.5 h late
    bus = ev.EventBus()
    rec = Recorder(bus)
    ex = Executor()
    t = ticker(cron, clock, ex, bus=bus)
    await t.start(loop=False)
    assert ex.calls == []
    job = await cron.get(job_id)
    assert job is not None and job.enabled
    assert job.next_run == T0 + timedelta(hours=4)
    assert job.last_status == "missed" and "missed the run due 2026-03-02 09:00" in job.last_error
    (run,) = await cron.runs(job_id)
    assert (run.status, run.trigger) == ("missed", "missed")
    (finished,) = rec.of(CronRunFinished)
    assert finished.status == "missed" and rec.of(CronRunStarted) == []
    clock.set(T0 + timedelta(hours=4))
    assert len(await run_tick(t)) == 1  # the schedule goes on


async def test_missed_one_shot_beyond_grace_is_kept_and_stopped(cron, clock):
    job_id = await add(cron, "in 30m")
    clock.set(T0 + timedelta(hours=2))
    ex = Executor()
    await run_tick(ticker(cron, clock, ex))
    job = await cron.get(job_id)
    assert ex.calls == [] and job is not None
    assert (job.enabled, job.next_run, job.last_status, job.state) == (
        False,
        None,
        "missed",
        "done",
    )


async def test_one_shot_is_removed_after_success(cron, clock):
    bus = ev.EventBus()
    rec = Recorder(bus)
    job_id = await add(cron, "in 30m")
    t = ticker(cron, clock, Executor(), bus=bus)
    clock.set(T0 + timedelta(minutes=30))
    assert len(await run_tick(t)) == 1
    assert await cron.get(job_id) is None
    assert await cron.runs(job_id) == []
    assert rec.of(CronRunFinished)[-1].job_removed
    assert rec.of(CronJobChanged)[-1].change == "removed"
    clock.set(T0 + timedelta(days=1))
    assert await run_tick(t) == []


@pytest.mark.parametrize(
    "outcome",
    [
        RunOutcome("error", "model down"),
        RunOutcome("ok", delivery_status="failed", delivery_error="telegram: chat not found"),
    ],
)
async def test_one_shot_that_failed_is_kept_stopped(cron, clock, outcome):
    job_id = await add(cron, "in 30m")
    clock.set(T0 + timedelta(minutes=30))
    await run_tick(ticker(cron, clock, Executor(outcome)))
    job = await cron.get(job_id)
    assert job is not None and not job.enabled and job.next_run is None
    assert (job.last_status, job.last_error) == (outcome.status, outcome.error)
    assert (job.last_delivery_status, job.last_delivery_error) == (
        outcome.delivery_status,
        outcome.delivery_error,
    )


async def test_repeat_count_retires_the_job(cron, clock):
    job_id = await add(cron, "every 1h", repeat=2)
    t = ticker(cron, clock, Executor())
    clock.set(T0 + timedelta(hours=1))
    await run_tick(t)
    job = await cron.get(job_id)
    assert job is not None and job.runs == 1 and job.enabled
    clock.set(T0 + timedelta(hours=2))
    await run_tick(t)
    assert await cron.get(job_id) is None


async def test_executor_exception_is_recorded_as_error(cron, clock):
    job_id = await add(cron, "every 1h")
    clock.set(T0 + timedelta(hours=1))
    await run_tick(ticker(cron, clock, Executor(RuntimeError("boom"))))  # type: ignore[arg-type]
    job = await cron.get(job_id)
    assert job is not None and job.last_status == "error" and "boom" in (job.last_error or "")
    assert job.enabled and job.lease_owner is None


async def test_two_tickers_on_one_database_run_a_job_once(db, clock):
    stores = [await SessionStore.open(db) for _ in range(2)]
    try:
        crons = [CronStore(s) for s in stores]
        job_id = await add(crons[0], "every 1h")
        executors = [Executor(), Executor()]
        for ex in executors:
            ex.gate = asyncio.Event()
        tickers = [ticker(c, clock, ex) for c, ex in zip(crons, executors, strict=True)]
        clock.set(T0 + timedelta(hours=1))
        results = await asyncio.gather(*(t.tick() for t in tickers))
        assert sorted(len(r) for r in results) == [0, 1]
        winner = 0 if results[0] else 1
        loser = tickers[1 - winner]
        # While it runs, the other process can neither start it by hand nor at its next slot.
        with pytest.raises(CronError, match="already running"):
            await loser.run_now(job_id)
        clock.set(T0 + timedelta(hours=2))
        assert await loser.tick() == []
        executors[winner].gate.set()
        await tickers[winner].wait_idle()
        # The slot that came due meanwhile runs once, in whichever process ticks next.
        executors[1 - winner].gate.set()
        assert len(await loser.tick()) == 1
        await loser.wait_idle()
        assert len(executors[0].calls) + len(executors[1].calls) == 2
        assert [r.status for r in await crons[0].runs(job_id)] == ["ok", "ok"]
    finally:
        for ex in executors:
            ex.gate.set()
        for t in tickers:
            await t.stop()
        for s in stores:
            await s.close()


async def test_a_crashed_owners_run_is_marked_interrupted_never_rerun(cron, clock):
    dead = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; print(os.getpid())", stdout=asyncio.subprocess.PIPE
    )
    pid = int((await dead.communicate())[0])
    owner = f"{socket.gethostname()}/{pid}/abc"
    assert owner_liveness(owner) == "dead"
    assert owner_liveness("elsewhere/1/x") == "unknown"
    job_id = await add(cron, "every 1h")
    clock.set(T0 + timedelta(hours=1))
    claims, _ = await cron.claim_due(clock.now(), grace_s=900, owner=owner, lease_s=120)
    assert len(claims) == 1  # ... and that process died here, between claim and run
    ex = Executor()
    await run_tick(ticker(cron, clock, ex))
    assert ex.calls == []
    job = await cron.get(job_id)
    assert job is not None and job.lease_owner is None and job.last_status == "interrupted"
    assert job.next_run == T0 + timedelta(hours=2)
    (run,) = await cron.runs(job_id)
    assert run.status == "interrupted" and run.finished_at == clock.now()


async def test_expired_lease_of_another_host_is_recovered(cron, clock):
    job_id = await add(cron, "every 1h")
    clock.set(T0 + timedelta(hours=1))
    await cron.claim_due(clock.now(), grace_s=900, owner="otherhost/42/x", lease_s=120)
    t = ticker(cron, clock, Executor())
    await run_tick(t)
    assert [r.status for r in await cron.runs(job_id)] == ["running"]  # lease still live
    clock.advance(121)
    await run_tick(t)
    assert [r.status for r in await cron.runs(job_id)] == ["interrupted"]


async def test_heartbeat_renews_the_lease_while_running(cron, clock):
    job_id = await add(cron, "every 1h")
    ex = Executor()
    ex.gate = asyncio.Event()
    t = ticker(cron, clock, ex)
    clock.set(T0 + timedelta(hours=1))
    await t.tick()
    await ex.started.wait()
    await _until(lambda: clock.sleepers >= 1)
    for _ in range(6):  # 4 minutes, twice the lease length
        clock.advance(40)
        await asyncio.sleep(0.05)
    job = await cron.get(job_id)
    assert job is not None and job.is_running(clock.now())
    ex.gate.set()
    await t.wait_idle()


async def test_run_now_and_requested_runs_keep_the_schedule(cron, clock):
    job_id = await add(cron, "every 1h")
    await cron.pause(job_id, T0)
    ex = Executor()
    t = ticker(cron, clock, ex)
    claim = await t.run_now(job_id)
    await t.wait_idle()
    assert claim.run.trigger == "manual" and len(ex.calls) == 1
    await cron.request_run(job_id, clock.now())  # what `hermes cron run` does
    (claim,) = await run_tick(t)
    assert claim.run.trigger == "manual"
    job = await cron.get(job_id)
    assert job is not None and not job.enabled and job.run_requested_at is None
    assert job.next_run == T0 + timedelta(hours=1)
    assert await run_tick(t) == []


async def _until(predicate, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)
