"""Slash-command completion for ``hermes chat``, from the same registry as the TUI's."""

from __future__ import annotations

from collections.abc import Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from hermes_gateway.commands.registry import CommandRegistry

__all__ = ["SlashCompleter"]


class SlashCompleter(Completer):
    """Completes ``/command`` (names and aliases, each with its description)."""

    def __init__(self, registry: CommandRegistry) -> None:
        self.registry = registry

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or " " in text:
            return
        typed = text[1:].lower()
        for spec in self.registry.specs("local"):
            for name in (spec.name, *spec.aliases):
                if name.startswith(typed):
                    yield Completion(
                        "/" + name, start_position=-len(text), display_meta=spec.description
                    )
