"""``/background`` (aliases ``/bg``, ``/btw``, as in Hermes Agent) and ``/stop`` extended to
the chat's background runs."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from hermes_gateway.background.runs import preview
from hermes_gateway.background.service import Refused
from hermes_gateway.commands.registry import CommandContext, CommandResult, CommandSpec

if TYPE_CHECKING:
    from hermes_gateway.background.service import BackgroundService

__all__ = ["USAGE", "background_command", "stop_with_background"]

USAGE = (
    "Usage: /background <prompt>\n"
    "Runs the prompt in a separate session. You can keep chatting meanwhile; the result is "
    "posted here when it is done. /stop stops it."
)


def background_command(service: BackgroundService) -> CommandSpec:
    async def handler(ctx: CommandContext) -> CommandResult:
        if not ctx.args.strip():
            return CommandResult(USAGE, ok=False)
        try:
            run = await service.launch(ctx.source, ctx.args)
        except Refused as refused:
            return CommandResult(str(refused), ok=False)
        return CommandResult(
            f"🔄 Background task started: “{preview(run.prompt)}” (id {run.id}). You can keep "
            "chatting; the result will be posted here when it is done."
        )

    return CommandSpec(
        "background",
        "Run a prompt in its own session; the result is posted here when done",
        handler,
        category="Session",
        aliases=("bg", "btw"),
        args_hint="<prompt>",
    )


def stop_with_background(stop: CommandSpec, service: BackgroundService) -> CommandSpec:
    """``/stop`` as before, and the chat's background runs with it (said how many)."""

    async def handler(ctx: CommandContext) -> CommandResult:
        live = service.runner.registry.get(ctx.session_key)
        answering = live is not None and live.busy
        stopped = service.stop_chat(ctx.session_key)
        result = await stop.handler(ctx)
        if not stopped:
            return result
        tasks = f"{stopped} background task{'s' if stopped != 1 else ''}"
        if not answering:
            return CommandResult(f"Stopped {tasks}.", ok=True)
        return dataclasses.replace(result, text=f"{result.text} Also stopped {tasks}.")

    return dataclasses.replace(
        stop, description=f"{stop.description}, and this chat's background tasks", handler=handler
    )
