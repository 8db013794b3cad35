"""The first-start offer: Hermes Agent's files are here and nothing was imported from them yet."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hermes_gateway.store import SessionStore
from hermes_gateway.store.imports import imported_count

from .apply import source_id
from .hermes_agent import summarize_home

__all__ = ["IMPORT_COMMAND", "import_offer"]

IMPORT_COMMAND = "hermes import hermes-agent"


async def import_offer(store: SessionStore, home: Path) -> str | None:
    """The notice to show, or None (nothing there, or an import already ran from ``home``)."""
    if await imported_count(store, source_id(home)):
        return None
    summary = await asyncio.to_thread(summarize_home, home)
    if summary.empty:
        return None
    return (
        f"Found Hermes Agent data ({summary.sessions} sessions, {summary.jobs} cron jobs, "
        f"{summary.pairings} pairings{', SOUL.md' if summary.soul else ''}): "
        f"run `{IMPORT_COMMAND}` to bring it in"
    )
