"""Commands that choose what a message does while the chat's answer is being written.

``/queue <msg>`` answers it after the running turn, ``/steer <msg>`` adds it to the running
turn at its next step, whatever ``display.busy_input_mode`` says (Hermes Agent's commands of
the same names). With nothing running, either is just a message.
"""

from __future__ import annotations

from dataclasses import replace

from hermes_gateway.commands.registry import CommandContext, CommandRegistry, CommandResult
from hermes_gateway.config import BusyMode
from hermes_gateway.runner.busy_ack import TEXTS

__all__ = ["register_flow_commands"]

TOLD = {
    "steered": TEXTS["steered"],
    "queued": TEXTS["queued"],
    "interrupted": "",
    "started": "",  # nothing was running: it is simply the next message, answered now
    "held": "",  # a paused chat: stored for the operator, as any message is
    "stored": "Stored: answered after the restart.",
    "duplicate": "",
    "empty": "",
}


def register_flow_commands(reg: CommandRegistry) -> None:
    """Add ``/queue`` and ``/steer`` to ``reg``."""

    @reg.command(
        "queue",
        "Send a message to answer after the current one (doesn't interrupt)",
        args_hint="<message>",
        category="Control",
    )
    async def _queue(ctx: CommandContext) -> CommandResult:
        return await _submit(ctx, "queue")

    @reg.command(
        "steer",
        "Add a message to the answer being written, at its next step",
        args_hint="<message>",
        category="Control",
    )
    async def _steer(ctx: CommandContext) -> CommandResult:
        return await _submit(ctx, "steer")


async def _submit(ctx: CommandContext, mode: BusyMode) -> CommandResult:
    text = ctx.args.strip()
    if not text:
        return CommandResult(f"Usage: /{ctx.name} <message>", ok=False)
    if ctx.event.from_operator:
        return CommandResult(f"/{ctx.name} is for the chat's own messages.", ok=False)
    event = replace(ctx.event, text=text, inbox_id=None)  # same message id: stored once
    outcome = await ctx.host.submit(event, mode)
    return CommandResult(TOLD[outcome])
