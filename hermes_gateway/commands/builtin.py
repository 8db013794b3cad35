"""The built-in slash commands. Each returns text; none writes to a screen or a chat."""

from __future__ import annotations

import time

from hermes_gateway.agent.context import context_share
from hermes_gateway.agent.server_models import listed_models
from hermes_gateway.commands import insights
from hermes_gateway.commands.flow import register_flow_commands
from hermes_gateway.commands.registry import CommandContext, CommandRegistry, CommandResult
from hermes_gateway.models import MessageEvent
from hermes_gateway.redact import redact, redact_url
from hermes_gateway.store import SessionRecord
from hermes_gateway.text import ago
from hermes_gateway.text import one_line as _clip


def build_registry() -> CommandRegistry:
    """A registry with every built-in command; features add theirs with ``register``."""
    reg = CommandRegistry()

    @reg.command("help", "Show the commands you can use here", category="Info", aliases=("h",))
    async def _help(ctx: CommandContext) -> CommandResult:
        return CommandResult(ctx.host.help_text(ctx.source.platform))

    @reg.command(
        "new", "Start a new conversation (the old one stays searchable)", aliases=("reset",)
    )
    async def _new(ctx: CommandContext) -> CommandResult:
        record = await ctx.host.reset_session(ctx.source)
        return CommandResult(f"New session started ({record.id}).")

    @reg.command("stop", "Stop the answer being written", category="Control")
    async def _stop(ctx: CommandContext) -> CommandResult:
        if ctx.host.interrupt(ctx.session_key, drop_pending=True):
            return CommandResult("Stopped.")
        return CommandResult("Nothing is running.")

    @reg.command("retry", "Ask again: replace the last answer with a new one", category="Control")
    async def _retry(ctx: CommandContext) -> CommandResult:
        rt = await ctx.host.runtime(ctx.source)
        if rt.busy:
            return CommandResult("Still answering; /stop first.", ok=False)
        removed = await ctx.host.rewind_last_turn(ctx.source)
        user = next((m for m in removed if m.role == "user"), None)
        if user is None or not user.content:
            return CommandResult("There is nothing to retry.", ok=False)
        await ctx.host.handle(MessageEvent(text=user.content, source=ctx.source))
        return CommandResult("Retrying the last message.")

    @reg.command("undo", "Remove the last exchange from the conversation", category="Control")
    async def _undo(ctx: CommandContext) -> CommandResult:
        rt = await ctx.host.runtime(ctx.source)
        if rt.busy:
            return CommandResult("Still answering; /stop first.", ok=False)
        removed = await ctx.host.rewind_last_turn(ctx.source)
        if not removed:
            return CommandResult("There is nothing to undo.", ok=False)
        user = next((m for m in removed if m.role == "user"), None)
        preview = _clip(user.content if user and user.content else "", 60)
        return CommandResult(f"Removed the last exchange ({len(removed)} messages): “{preview}”")

    @reg.command("status", "Model, session and platform status", category="Info")
    async def _status(ctx: CommandContext) -> CommandResult:
        host = ctx.host
        rt = await host.runtime(ctx.source)
        model = host.model_for(rt)
        if not _private(ctx):
            # A group sees the bot's state, not where its model lives or which session it is.
            lines = [
                f"**Model:** {model.name or '(not configured)'}",
                f"**Busy:** {'yes' if rt.busy else 'no'}",
            ]
            return CommandResult("\n".join(lines))
        endpoint = redact_url(model.base_url) if model.base_url else "-"
        lines = [
            f"**Model:** {model.name or '(not configured)'} at {endpoint}",
            f"**Session:** {rt.record.title or rt.record.id} ({rt.key})",
            f"**Busy:** {'yes' if rt.busy else 'no'}",
            f"**Tokens:** {rt.record.prompt_tokens + rt.record.completion_tokens:,}",
        ]
        for name, st in sorted(host.platform_state.items()):
            detail = f" ({redact(st.detail)})" if st.detail else ""
            lines.append(f"**{name}:** {st.state}{detail}")
        return CommandResult("\n".join(lines))

    @reg.command(
        "model",
        "Show or switch the model for this session",
        args_hint="[name]",
        category="Settings",
    )
    async def _model(ctx: CommandContext) -> CommandResult:
        host = ctx.host
        rt = await host.runtime(ctx.source)
        choices = [host.config.model.name, *host.config.model.models]
        choices = [c for i, c in enumerate(choices) if c and c not in choices[:i]]
        if not ctx.args:
            current = host.model_for(rt).name or "(not configured)"
            others = ", ".join(choices) if choices else "none configured"
            return CommandResult(f"Model: **{current}**. Configured: {others}.")
        name = ctx.args.split()[0]
        if name not in choices:
            listed = await listed_models(host.config.model)
            if listed is None or name not in listed:
                offered = [*choices, *(m for m in listed or () if m not in choices)]
                known = ", ".join(offered) if offered else "none"
                return CommandResult(
                    f"Unknown model “{_clip(name, 60)}”. Available: {known}.", False
                )
        rt.model_name = name
        return CommandResult(f"Model for this session set to **{rt.model_name}**.")

    @reg.command("usage", "Token usage of this session", category="Info")
    async def _usage(ctx: CommandContext) -> CommandResult:
        rt = await ctx.host.runtime(ctx.source)
        prompt, completion = await ctx.host.store.usage_totals(rt.record.id)
        last_p, last_c = rt.last_turn
        used, window = await ctx.host.context_use(rt)
        return CommandResult(
            f"This session: {prompt:,} prompt + {completion:,} completion = "
            f"{prompt + completion:,} tokens. Last turn: {last_p:,} + {last_c:,}. "
            f"Context: ~{used:,} of {window:,} tokens ({context_share(used, window)})."
        )

    insights.register(reg)

    @reg.command("compress", "Fold older turns into a summary to free context", category="Control")
    async def _compress(ctx: CommandContext) -> CommandResult:
        rt = await ctx.host.runtime(ctx.source)
        if rt.busy:
            return CommandResult("Still answering; /stop first.", ok=False)
        done = await ctx.host.compress_session(rt)
        if done.error:
            return CommandResult(f"Not compressed: {done.error}. History kept.", ok=False)
        return CommandResult(
            f"Compressed {done.messages} messages into a summary: ~{done.tokens_before:,} -> "
            f"~{done.tokens_after:,} tokens (saved ~{done.saved:,}). The originals stay in the "
            "history and search."
        )

    @reg.command("title", "Show or set this session's title", args_hint="[name]")
    async def _title(ctx: CommandContext) -> CommandResult:
        host = ctx.host
        rt = await host.runtime(ctx.source)
        if not ctx.args:
            return CommandResult(f"Title: {rt.record.title or '(none)'} — id {rt.record.id}")
        title = ctx.args.strip()[:100]
        try:
            await host.store.set_title(rt.record.id, title)
        except ValueError as exc:
            if ctx.source.platform != "local":  # the store's text names the other session
                return CommandResult("That title is already used; choose another.", ok=False)
            return CommandResult(str(exc), ok=False)
        rt.record.title = title
        host.publish_session(rt, "titled")
        return CommandResult(f"Title set to “{title}”.")

    @reg.command("resume", "Go back to an earlier session of this chat", args_hint="[name]")
    async def _resume(ctx: CommandContext) -> CommandResult:
        host = ctx.host
        if not ctx.args:
            return await _list_sessions(ctx, only_this_chat=True)
        if ctx.source.platform != "local":
            record = _match(await _own_sessions(ctx), ctx.args.strip())
        else:
            record = await host.store.find_session(ctx.args.strip())
        if record is None:
            return CommandResult(f"No session named “{ctx.args.strip()}”. See /sessions.", False)
        if record.session_key != ctx.session_key:
            if ctx.source.platform != "local":  # never reveal other people's chats
                return CommandResult(f"No session named “{ctx.args.strip()}”.", ok=False)
            return CommandResult(
                f"“{record.title or record.id}” belongs to another chat ({record.session_key}).",
                ok=False,
            )
        await host.activate_session(ctx.source, record)
        return CommandResult(f"Resumed “{record.title or record.id}”.")

    @reg.command(
        "search", "Search every conversation", args_hint="<words>", category="Info", scope="local"
    )
    async def _search(ctx: CommandContext) -> CommandResult:
        query = ctx.args.strip()
        if not query:
            return CommandResult("Usage: /search <words>", ok=False, action="search")
        hits = await ctx.host.store.search(query, limit=8)
        if not hits:
            return CommandResult(f"No matches for “{_clip(query, 40)}”.", action="search:" + query)
        lines = [
            f"- **{h.session_title or h.session_key}** ({h.role}): {_clip(h.snippet, 90)}"
            for h in hits
        ]
        return CommandResult("\n".join(lines), action="search:" + query)

    @reg.command("sessions", "List recent sessions", category="Info")
    async def _sessions(ctx: CommandContext) -> CommandResult:
        # A remote user sees only their own chat's sessions; the operator sees all.
        return await _list_sessions(ctx, only_this_chat=ctx.source.platform != "local")

    @reg.command(
        "personality", "Show or set the personality", args_hint="[name|none]", category="Settings"
    )
    async def _personality(ctx: CommandContext) -> CommandResult:
        host = ctx.host
        rt = await host.runtime(ctx.source)
        known = host.config.personalities
        current = rt.personality if rt.personality is not None else host.config.personality
        if not ctx.args:
            names = ", ".join(sorted(known)) or "none defined in config.yaml"
            return CommandResult(f"Personality: {current or 'none'}. Available: {names}.")
        name = ctx.args.strip()
        if name.lower() == "none":
            rt.personality, rt.system_prompt = "", None
            return CommandResult("Personality cleared.")
        if name not in known:
            return CommandResult(
                f"Unknown personality “{name}”. Available: {', '.join(sorted(known)) or 'none'}.",
                ok=False,
            )
        rt.personality, rt.system_prompt = name, None
        return CommandResult(f"Personality set to {name}.")

    @reg.command("quit", "Leave Hermes", category="Control", aliases=("exit", "q"), scope="local")
    async def _quit(ctx: CommandContext) -> CommandResult:
        return CommandResult("Bye.", action="quit")

    register_flow_commands(reg)
    return reg


def _private(ctx: CommandContext) -> bool:
    """The operator's terminal or a direct message: endpoint and session details may show."""
    return ctx.source.platform == "local" or ctx.source.chat_type == "dm"


OWN_SCAN = 2000
"""Recent sessions scanned for a remote chat's own ones (the store lists all chats')."""


async def _own_sessions(ctx: CommandContext) -> list[SessionRecord]:
    """This chat's sessions only, most recent first."""
    records = await ctx.host.store.list_sessions(limit=OWN_SCAN)
    return [r for r in records if r.session_key == ctx.session_key]


def _match(records: list[SessionRecord], name: str) -> SessionRecord | None:
    """``/resume`` among the given sessions: exact id, exact title, then a unique prefix."""
    fold = name.casefold()
    for r in records:
        if r.id == name:
            return r
    for r in records:
        if r.title and r.title.casefold() == fold:
            return r
    prefixed = [r for r in records if r.title and r.title.casefold().startswith(fold)]
    return prefixed[0] if len(prefixed) == 1 else None


async def _list_sessions(ctx: CommandContext, *, only_this_chat: bool) -> CommandResult:
    if only_this_chat:
        records = (await _own_sessions(ctx))[:20]
    else:
        records = await ctx.host.store.list_sessions(limit=20)
    if not records:
        return CommandResult("No sessions yet.")
    now = time.time()
    lines = []
    for r in records:
        name = r.title or r.id
        active = "" if r.ended_at else " ●"
        lines.append(
            f"- **{name}**{active} · {r.platform} · {r.message_count} msgs · "
            f"{ago(now - r.updated_at)} — {_clip(r.last_preview, 50)}"
        )
    return CommandResult("\n".join(lines))
