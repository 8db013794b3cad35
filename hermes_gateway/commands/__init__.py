"""Slash commands: one registry shared by every platform (see registry.py)."""

from hermes_gateway.commands.registry import (
    CommandContext,
    CommandRegistry,
    CommandResult,
    CommandSpec,
    parse_command,
)

__all__ = ["CommandContext", "CommandRegistry", "CommandResult", "CommandSpec", "parse_command"]
