"""At most once: a gateway process killed between claiming a job (next run advanced, lease
taken) and running it never gets that slot run twice, by itself or by the next gateway.

The child is a real process with the real ticker on the real database file; its executor only
announces the claim and waits, so SIGKILL lands exactly between "advance" and "run".
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from hermes_cron.clock import ManualClock
from hermes_cron.events import CronRunFinished
from hermes_cron.jobs import CronStore
from hermes_cron.schedules import parse_schedule
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.helpers import Recorder

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

CHILD = """
import asyncio, sys
from datetime import datetime
from hermes_cron.clock import ManualClock
from hermes_cron.jobs import CronStore
from hermes_cron.settings import CronSettings
from hermes_cron.ticker import Ticker

async def main(db, when):
    cron = await CronStore.open(db)

    async def execute(claim):
        print("CLAIMED", claim.job.id, claim.run.id, flush=True)
        await asyncio.Event().wait()  # killed here, before any agent work

    clock = ManualClock(datetime.fromisoformat(when))
    ticker = Ticker(cron, execute, settings=CronSettings(timezone="UTC"), clock=clock)
    await ticker.tick()
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_killed_gateway_never_gets_its_claimed_slot_run_again(hermes_home, fake_openai):
    config = make_config(hermes_home, fake_openai, HERMES_TIMEZONE="UTC")
    cron = await CronStore.open(config.paths.database)
    job = await cron.add(
        name="report", prompt="the report", schedule=parse_schedule("every 1h", now=T0), now=T0
    )
    await cron.close()

    due = T0 + timedelta(hours=1)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(config.paths.database),
        due.isoformat(),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(child.stdout.readline(), timeout=20)  # type: ignore[union-attr]
        assert line.decode().split()[:2] == ["CLAIMED", job.id]
    finally:
        child.kill()
        await child.wait()

    clock = ManualClock(due + timedelta(seconds=20))  # well within the grace window
    gateway = build_gateway(config, clock=clock)
    rec = Recorder(gateway.bus)
    await gateway.start(local=False, adapters=[])
    try:
        assert gateway.cron is not None
        await gateway.cron.ticker.wait_idle()
        assert fake_openai.requests == []  # the slot the dead process claimed is not re-run
        (run,) = await gateway.cron.runs(job.id)
        assert run.status == "interrupted" and run.scheduled_for == due
        (stored,) = await gateway.cron.list_jobs()
        assert stored.last_status == "interrupted" and stored.lease_owner is None
        assert stored.next_run == due + timedelta(hours=1)
        assert [e.status for e in rec.of(CronRunFinished)] == ["interrupted"]

        clock.set(due + timedelta(hours=1))  # the following slot runs normally, once
        await rec.wait_for(lambda: len(rec.of(CronRunFinished)) == 2)
        assert rec.of(CronRunFinished)[-1].status == "ok"
        assert len(fake_openai.requests) == 1
    finally:
        await gateway.stop()
