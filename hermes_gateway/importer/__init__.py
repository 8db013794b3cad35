"""Bringing in what a Hermes Agent user already has (``hermes import hermes-agent``).

:mod:`.hermes_agent` reads a Hermes Agent home without changing it, :mod:`.apply` writes it
into our store in one transaction through the import ledger, :mod:`.offer` is the notice a
first start shows when such data is there and was never imported.
"""

from __future__ import annotations

from .apply import (
    IMPORTED_PERSONALITY_KEY,
    ImportReport,
    JobImport,
    import_hermes_agent,
    imported_personality,
    source_id,
)
from .hermes_agent import HomeSummary, ReadError, read_home, summarize_home
from .offer import IMPORT_COMMAND, import_offer

__all__ = [
    "IMPORTED_PERSONALITY_KEY",
    "IMPORT_COMMAND",
    "HomeSummary",
    "ImportReport",
    "JobImport",
    "ReadError",
    "import_hermes_agent",
    "import_offer",
    "imported_personality",
    "read_home",
    "source_id",
    "summarize_home",
]
