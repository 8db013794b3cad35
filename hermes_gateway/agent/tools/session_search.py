"""The ``session_search`` tool: full-text search over past conversations.

The tool only formats; the search itself is whatever backend the runner puts in
``ToolContext.search`` (the SQLite FTS5 index in practice). Keeping the store out of this module
means the tool works, and is testable, with any backend that returns hit-shaped objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from hermes_gateway.agent.tools.base import (
    Tool,
    ToolContext,
    ToolResult,
    cap_text,
    error_result,
    plural,
)
from hermes_gateway.text import one_line

MAX_LIMIT = 50
SNIPPET_CHARS = 400


def _format_date(value: Any) -> str:
    """Accept what stores typically return: datetime, epoch seconds or an ISO string."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError):
            return str(value)
    if value is None:
        return "?"
    return str(value)[:16]


def format_hit(hit: Any) -> str:
    """One line per hit: ``[date] title (session id) role: snippet``."""
    session_id = getattr(hit, "session_id", "?")
    title = getattr(hit, "session_title", None) or "(untitled)"
    role = getattr(hit, "role", None) or "?"
    date = _format_date(getattr(hit, "created_at", None))
    snippet = " ".join(str(getattr(hit, "snippet", "") or "").split())
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[:SNIPPET_CHARS] + "…"
    return f"[{date}] {title} ({session_id}) {role}: {snippet}"


class SessionSearchTool(Tool):
    """Find earlier messages across all sessions."""

    name: ClassVar[str] = "session_search"
    description: ClassVar[str] = (
        "Search past conversations (all sessions) by keywords and return matching messages "
        "with their session, role, date and a snippet. Use it to recall what was said or "
        "decided earlier."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Words to search for."},
            "limit": {
                "type": "integer",
                "description": f"Maximum number of hits (default 10, at most {MAX_LIMIT}).",
            },
        },
        "required": ["query"],
    }

    default_limit: int = 10

    def __init__(self, *, output_cap: int = 50_000) -> None:
        self.output_cap = output_cap

    def preview(self, args: dict[str, Any]) -> str:
        return one_line(str(args.get("query", "")))

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if ctx.search is None:
            return error_result("session search is not available", summary="not available")
        query = str(args.get("query", "")).strip()
        if not query:
            return error_result("query is empty")
        limit = max(1, min(int(args.get("limit") or self.default_limit), MAX_LIMIT))
        hits = await ctx.search(query, limit)
        if not hits:
            return ToolResult(content=f"no past messages match {query!r}", summary="no hits")
        lines = [format_hit(hit) for hit in hits[:limit]]
        return ToolResult(
            content=cap_text("\n".join(lines), self.output_cap),
            summary=plural(len(lines), "hit"),
        )
