"""``/insights [days]``: activity of the last days (Hermes Agent's command, default 30 days).

Sessions, messages, tool calls, tokens in and out, the most used tools and, for the operator,
a line per platform. A remote chat sees only its own activity, never other users'; the
operator's terminal sees everything (and may add ``--source <platform>``). The text is short
Markdown, readable in a Telegram message as in the TUI.
"""

from __future__ import annotations

import asyncio
import re
import time

from hermes_gateway.commands.registry import CommandContext, CommandRegistry, CommandResult
from hermes_gateway.store.insights import Activity, read_activity, read_activity_at

__all__ = ["DEFAULT_DAYS", "format_activity", "parse_insights_args", "register"]

DEFAULT_DAYS = 30
MAX_DAYS = 3650
TOP_TOOLS = 8
USAGE = f"Usage: /insights [days] — days is a whole number from 1 to {MAX_DAYS} (default 30)."
_DASHES = re.compile(r"[\u2012\u2013\u2014\u2015](?=days|source)")
"""Phones turn ``--days`` into ``—days``; read it back as ``--days``."""


def parse_insights_args(args: str) -> tuple[int, str | None] | str:
    """``(days, platform)`` from ``7``, ``--days 7``, ``--source telegram``; or the error."""
    parts = _DASHES.sub("--", args).split()
    days, source = DEFAULT_DAYS, None
    i = 0
    while i < len(parts):
        part = parts[i]
        if part in ("--days", "--source") and i + 1 < len(parts):
            if part == "--source":
                source = parts[i + 1].lower()
                i += 2
                continue
            part = parts[i + 1]
            i += 1
        if not part.isdigit() or not 1 <= int(part) <= MAX_DAYS:
            return USAGE
        days = int(part)
        i += 1
    return days, source


def format_activity(activity: Activity, days: int, *, scope: str, per_platform: bool) -> str:
    """The reply: a few short lines, Markdown bold only (Telegram renders it, so does the TUI)."""
    period = f"last {days} day{'s' if days != 1 else ''}"
    if not activity.messages and not activity.tool_calls:
        return f"No activity in the {period} ({scope})."
    lines = [
        f"📊 **Activity, {period}** ({scope})",
        f"**Sessions:** {activity.sessions:,} · **Messages:** {activity.messages:,} "
        f"({activity.user_messages:,} in, {activity.answers:,} out) · "
        f"**Tool calls:** {activity.tool_calls:,}",
        f"**Tokens:** {activity.prompt_tokens:,} in / {activity.completion_tokens:,} out",
        f"**Active days:** {activity.active_days}",
    ]
    if activity.tools:
        top = " · ".join(f"{name} {count:,}" for name, count in activity.tools)
        lines.append(f"**Top tools:** {top}")
    if per_platform and activity.platforms:
        lines.append("**Per platform:**")
        for p in activity.platforms:
            tokens = p.prompt_tokens + p.completion_tokens
            lines.append(
                f"- {p.platform}: {p.sessions:,} sessions, {p.messages:,} messages, "
                f"{tokens:,} tokens"
            )
    return "\n".join(lines)


def register(reg: CommandRegistry) -> None:
    @reg.command(
        "insights",
        "Activity of the last days: messages, tokens, tools",
        args_hint="[days]",
        category="Info",
    )
    async def _insights(ctx: CommandContext) -> CommandResult:
        parsed = parse_insights_args(ctx.args)
        if isinstance(parsed, str):
            return CommandResult(parsed, ok=False)
        days, platform = parsed
        operator = ctx.source.platform == "local"
        key = None if operator else ctx.session_key  # never another chat's data
        since = time.time() - days * 86400
        store = ctx.host.store
        if str(store.path) == ":memory:":
            activity = await store.read_sync(read_activity, since, key, platform, TOP_TOOLS)
        else:  # its own read connection: a long window never holds up the turns' writes
            activity = await asyncio.to_thread(
                read_activity_at, store.path, since, key, platform, TOP_TOOLS
            )
        scope = "all chats" if operator else "this chat"
        if platform:
            scope += f", {platform}"
        return CommandResult(format_activity(activity, days, scope=scope, per_platform=operator))
