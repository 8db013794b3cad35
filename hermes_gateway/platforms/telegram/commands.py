"""The bot's command menu (``setMyCommands``) from the shared command registry.

Telegram shows the menu when a user types ``/``; it is generated from the same registry the
runner dispatches through, so a command is declared once for every platform.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from telegram import BotCommand

if TYPE_CHECKING:
    from hermes_gateway.commands.registry import CommandSpec

__all__ = ["bot_commands"]

_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


def bot_commands(specs: Iterable[CommandSpec]) -> list[BotCommand]:
    """The bot menu for ``setMyCommands``, within Telegram's rules.

    Names may only hold ``[a-z0-9_]`` (hyphens become underscores, which the command parser
    maps back), at most 32 characters; descriptions are 3 to 256 characters; at most 100.
    """
    commands: list[BotCommand] = []
    seen: set[str] = set()
    for spec in specs:
        name = spec.name.lower().replace("-", "_")
        if not _COMMAND_NAME.fullmatch(name) or name in seen:
            continue
        desc = " ".join(spec.description.split())
        if len(desc) > 256:
            desc = desc[:255].rstrip() + "…"
        if len(desc) < 3:
            desc = f"Run /{name}"
        commands.append(BotCommand(name, desc))
        seen.add(name)
        if len(commands) == 100:
            break
    return commands
