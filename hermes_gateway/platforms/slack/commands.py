"""The shared command registry as Slack slash commands, and back.

Slack apps declare their slash commands in the app's manifest (there is no API to publish
them), so :func:`manifest_commands` gives the ``features.slash_commands`` entries for the
registry, to paste into the app's configuration; ``/hermes <command> args`` always works
too (Hermes Agent's single command). In Socket Mode an invocation arrives as a
``slash_commands`` envelope; it becomes the same ``/name args`` text a user could have
typed, so every platform runs commands through the one registry and the runner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hermes_gateway.commands.registry import CommandRegistry, CommandSpec
from hermes_gateway.text import one_line

__all__ = ["UMBRELLA", "command_text", "manifest_commands"]

UMBRELLA = "hermes"
"""``/hermes <command> [args]`` runs any registry command (one manifest entry suffices)."""
NAME_MAX = 32
_NOT_NAME = re.compile(r"[^-_a-z0-9]+")


def command_text(command: str, text: str, registry: CommandRegistry | None) -> str | None:
    """The ``/name args`` text for a Slack invocation, or None for a command we lack."""
    name = command.strip().lstrip("/").lower()
    args = " ".join(text.split()) if "\n" not in text else text.strip()
    if name == UMBRELLA:
        sub, _, rest = args.partition(" ")
        sub = sub.lstrip("/")
        if not sub:
            return "/help"
        name, args = sub.lower(), rest.strip()
    if not name or (registry is not None and registry.resolve(name) is None):
        return None
    return f"/{name} {args}".rstrip() if args else f"/{name}"


def manifest_commands(specs: Iterable[CommandSpec]) -> list[dict[str, Any]]:
    """``features.slash_commands`` entries of a Slack app manifest for these commands."""
    entries: list[dict[str, Any]] = [
        {
            "command": f"/{UMBRELLA}",
            "description": "Run a Hermes command: /hermes help",
            "usage_hint": "<command> [args]",
            "should_escape": False,
        }
    ]
    seen = {UMBRELLA}
    for spec in specs:
        name = _NOT_NAME.sub("-", spec.name.lower()).strip("-")[:NAME_MAX]
        if not name or name in seen:
            continue
        seen.add(name)
        entry: dict[str, Any] = {
            "command": f"/{name}",
            "description": one_line(spec.description, 100, trim=True) or name,
            "should_escape": False,
        }
        if spec.args_hint:
            entry["usage_hint"] = one_line(spec.args_hint, 100, trim=True)
        entries.append(entry)
    return entries
