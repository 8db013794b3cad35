"""``hermes cron list | add | remove | run | pause | resume``: jobs from the shell.

Works on the same database as a running gateway (TUI or headless): every change is one SQLite
transaction, and the gateway re-reads jobs on each tick, so a job added here runs on
schedule without restarting anything. ``run`` asks the running gateway to start the job at its
next tick (within a minute); the agent, tools and platforms live in the gateway, not here.

Import-light on purpose (``hermes`` builds its parser on every start): everything heavy is
imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from datetime import datetime

    from hermes_gateway.config import Config

__all__ = ["add_parser", "run", "run_async"]

#: A ticker heartbeat younger than this means a gateway is running and will pick changes up.
ALIVE_WITHIN = timedelta(minutes=2, seconds=30)


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``cron`` command (and its sub-commands) to ``hermes``'s parser."""
    cron = subparsers.add_parser(
        "cron", help="manage scheduled jobs (works while a gateway is running)"
    )
    sub = cron.add_subparsers(dest="cron_command", metavar="{list,add,remove,run,pause,resume}")
    sub.add_parser("list", help="list jobs with their next run and last result")
    add = sub.add_parser("add", help="schedule a prompt")
    add.add_argument("schedule", help='"0 9 * * 1-5", "every 30m", "in 45m" or "2026-12-01T09:00"')
    add.add_argument("prompt", nargs="+", help="what the agent should do on each run")
    add.add_argument("--name", help="a short name (default: the prompt's first words)")
    add.add_argument(
        "--deliver",
        default=None,
        help='where answers go: local (default), telegram (home channel), "telegram:<chat_id>"',
    )
    add.add_argument("--repeat", type=int, help="stop after this many runs")
    for name, text in (
        ("remove", "delete a job"),
        ("run", "run a job at the gateway's next tick"),
        ("pause", "stop a job's schedule"),
        ("resume", "restart a paused job"),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("job", help="job id, id prefix or name")
    return cron


def run(args: argparse.Namespace) -> int:
    """Entry point from ``hermes cron ...``; returns the exit status."""
    from hermes_gateway.cli_support import run_with_config

    return run_with_config(run_async, args)


async def run_async(
    args: argparse.Namespace,
    config: Config,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    """The command against ``config``'s database (tests call this inside their loop).

    Returns:
        0 on success, 1 when the job or request is not usable, 2 on bad input.
    """
    from hermes_cron.commands import format_job
    from hermes_cron.jobs import CronError, CronStore, wall_now
    from hermes_cron.schedules import format_countdown
    from hermes_cron.service import create_job
    from hermes_cron.settings import CronSettings
    from hermes_cron.ticker import owner_liveness
    from hermes_gateway.delivery.router import DeliveryRouter

    out = out or sys.stdout
    err = err or sys.stderr
    command = getattr(args, "cron_command", None) or "list"
    store = await CronStore.open(config.paths.database)
    when = now or wall_now()
    try:
        if command == "list":
            jobs = await store.list()
            if not jobs:
                print("No scheduled jobs.", file=out)
            for job in jobs:
                print(
                    format_job(
                        job, when, running=job.is_running(when, owner_liveness), markdown=False
                    ),
                    file=out,
                )
            return 0
        if command == "add":
            settings = CronSettings.from_config(config)
            job = await create_job(
                store,
                DeliveryRouter(config, {}),
                args.schedule,
                " ".join(args.prompt),
                now=when,
                timezone=settings.timezone,
                name=args.name,
                deliver=args.deliver,
                repeat=args.repeat,
            )
            first = format_countdown(job.next_run, when) if job.next_run else "-"
            print(
                f"Added {job.id} “{job.name}”: {job.describe(when)}, first run {first}, "
                f"delivered to {job.deliver}.",
                file=out,
            )
            return 0
        job = await store.find(args.job)
        if command == "remove":
            await store.remove(job.id)
            print(f"Removed {job.id} “{job.name}”.", file=out)
        elif command == "pause":
            await store.pause(job.id, when)
            print(f"Paused {job.id} “{job.name}”.", file=out)
        elif command == "resume":
            job = await store.resume(job.id, when)
            nxt = format_countdown(job.next_run, when) if job.next_run else "-"
            print(f"Resumed {job.id} “{job.name}”; next run {nxt}.", file=out)
        elif command == "run":
            await store.request_run(job.id, when)
            beat = await store.last_beat()
            if beat is not None and when - beat[1] < ALIVE_WITHIN:
                tail = "the running gateway starts it within a minute."
            else:
                tail = "no gateway seems to be running; it runs when one starts."
            print(f"Run of {job.id} “{job.name}” requested: {tail}", file=out)
        return 0
    except CronError as exc:
        print(f"hermes cron: {exc}", file=err)
        return 1
    finally:
        await store.close()
