"""The shared command registry as Discord application (slash) commands, and back.

Discord shows slash commands only when they are registered with its API, so on connect the
registry is published with one bulk overwrite (idempotent: the same payload changes
nothing). An invocation comes back as an interaction, which is turned into the same
``/name args`` text a user could have typed, so every platform runs commands through the
one registry and the runner.

Discord's rules for a command: name 1-32 characters, lowercase letters, digits, ``-`` and
``_``; description 1-100 characters; at most 100 global commands. A registry entry's
``args_hint`` becomes a single optional string option, because the registry's arguments
are free text. The invocation is deferred at once (Discord wants an answer within 3 s) and
the runner's reply then replaces the "thinking..." placeholder.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import discord

from hermes_gateway.commands.registry import CommandSpec
from hermes_gateway.delivery.errors import DeliveryError
from hermes_gateway.platforms.discord.transport import ALLOWED_MENTIONS, REQUEST_TIMEOUT, guard
from hermes_gateway.text import one_line

__all__ = [
    "ARGS_OPTION",
    "PENDING_REPLY",
    "InteractionReply",
    "answer_interaction",
    "command_name",
    "command_payload",
    "interaction_command_text",
]

log = logging.getLogger(__name__)

NAME_MAX = 32
DESCRIPTION_MAX = 100
MAX_COMMANDS = 100
ARGS_OPTION = "args"
"""Name of the one free-text option a command with an ``args_hint`` gets."""

_CHAT_INPUT = 1
_STRING = 3
_NOT_NAME = re.compile(r"[^-_a-z0-9]+")


def command_name(name: str) -> str | None:
    """The Discord form of a registry name (None if nothing valid is left)."""
    cleaned = _NOT_NAME.sub("-", name.strip().lower()).strip("-")[:NAME_MAX]
    return cleaned or None


def command_payload(specs: Iterable[CommandSpec]) -> list[dict[str, Any]]:
    """The body of ``PUT /applications/{id}/commands`` for the given registry entries."""
    payload: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in specs:
        name = command_name(spec.name)
        if name is None or name in seen:
            continue
        seen.add(name)
        entry: dict[str, Any] = {
            "type": _CHAT_INPUT,
            "name": name,
            "description": one_line(spec.description, DESCRIPTION_MAX, trim=True) or name,
            "dm_permission": True,
        }
        if spec.args_hint:
            entry["options"] = [
                {
                    "type": _STRING,
                    "name": ARGS_OPTION,
                    "description": one_line(spec.args_hint, DESCRIPTION_MAX, trim=True),
                    "required": False,
                }
            ]
        payload.append(entry)
        if len(payload) == MAX_COMMANDS:
            break
    return payload


def interaction_command_text(data: Mapping[str, Any]) -> str:
    """``/name args`` for an application-command interaction's ``data``."""
    name = str(data.get("name", "")).strip()
    values = [
        str(option["value"])
        for option in data.get("options") or ()
        if isinstance(option, Mapping) and option.get("value") not in (None, "")
    ]
    return f"/{name} {' '.join(values)}".rstrip()


@dataclasses.dataclass(eq=False)
class InteractionReply:
    """A deferred slash command waiting for the reply the runner sends for it."""

    interaction: discord.Interaction
    target: str
    """The channel the command was run in; only a reply to that channel answers it."""
    used: bool = False


PENDING_REPLY: contextvars.ContextVar[InteractionReply | None] = contextvars.ContextVar(
    "discord_pending_reply", default=None
)
"""Set while a slash command runs through the runner, so that the runner's reply (which it
sends with ``adapter.send`` like for any platform) answers the interaction instead of
becoming a separate channel message."""


async def answer_interaction(reply: InteractionReply, chunks: list[str]) -> None:
    """The reply replaces the "thinking..." placeholder; further chunks follow it."""
    reply.used = True
    interaction = reply.interaction
    try:
        async with guard("send", REQUEST_TIMEOUT):
            for i, chunk in enumerate(chunks or ["Done."]):
                if i == 0:
                    await interaction.edit_original_response(
                        content=chunk, allowed_mentions=ALLOWED_MENTIONS
                    )
                else:
                    await interaction.followup.send(chunk, allowed_mentions=ALLOWED_MENTIONS)
    except DeliveryError as exc:
        log.warning("could not answer a Discord slash command: %s", exc)
