"""``hermes import hermes-agent [--from HOME]``: a Hermes Agent user's state, brought in once.

Lives here, at the top layer, because it joins the core's importer with cron's job
conversion (the core does not import cron). No Textual: it is a plain command. Works while a
gateway runs on the same home (the store takes turns between processes); a job imported
while one runs is picked up at its next tick.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hermes_gateway.config import Config

__all__ = ["add_parser", "run"]


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "import", help="bring in another program's sessions, cron jobs, pairings and personality"
    )
    sub = parser.add_subparsers(dest="import_source", required=True, metavar="{hermes-agent}")
    agent = sub.add_parser(
        "hermes-agent",
        help="from a Hermes Agent home (read only; running it again imports only what is new)",
    )
    agent.add_argument(
        "--from",
        dest="source_home",
        metavar="HOME",
        help="the Hermes Agent home to read (default: HERMES_HOME, i.e. ~/.hermes)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from hermes_gateway.cli_support import run_with_config

    return run_with_config(_run, args)


def _source_home(given: str | None, config: Config) -> Path | None:
    """The home to read (``--from`` or our own), None if it is not a folder."""
    home = Path(given).expanduser() if given else config.paths.home
    return home if home.is_dir() else None


async def _run(args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from hermes_cron.importing import JobConverter, write_job
    from hermes_cron.settings import CronSettings
    from hermes_gateway.importer import import_hermes_agent
    from hermes_gateway.store import SessionStore

    home = await asyncio.to_thread(_source_home, args.source_home, config)
    if home is None:
        print(f"hermes: {args.source_home or config.paths.home} is not a folder", file=sys.stderr)
        return 2
    store = await SessionStore.open(config.paths.database)
    try:
        report = await import_hermes_agent(
            store,
            home,
            convert_job=JobConverter(tz=CronSettings.from_config(config).timezone),
            write_job=write_job,
        )
    finally:
        await store.close()
    print("\n".join(report.lines()))
    return 0
