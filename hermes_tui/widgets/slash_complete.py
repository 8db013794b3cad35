"""The autocomplete list that opens above the input when a line starts with ``/``.

Entries come from the gateway's command registry (names, aliases, argument hints,
descriptions), so whatever ``/help`` lists is what completes.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from hermes_gateway.commands.registry import CommandRegistry, CommandSpec


class SlashComplete(OptionList):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.registry: CommandRegistry | None = None
        self.matches: list[CommandSpec] = []

    def update_for(self, text: str) -> bool:
        """Show the commands matching ``text``; returns whether the list is open."""
        if self.registry is None or not text.startswith("/") or " " in text or "\n" in text:
            self.close()
            return False
        self.matches = self.registry.complete(text[1:], platform="local")
        if not self.matches:
            self.close()
            return False
        self.clear_options()
        self.add_options([Option(self._label(spec), id=spec.name) for spec in self.matches])
        self.highlighted = 0
        self.display = True
        return True

    @property
    def is_open(self) -> bool:
        return bool(self.display) and bool(self.matches)

    def close(self) -> None:
        self.matches = []
        self.display = False

    def selected(self) -> CommandSpec | None:
        if not self.is_open or self.highlighted is None:
            return None
        return self.matches[self.highlighted]

    def move(self, step: int) -> None:
        if self.matches:
            current = self.highlighted or 0
            self.highlighted = (current + step) % len(self.matches)

    @staticmethod
    def _label(spec: CommandSpec) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"/{spec.name}", style="bold")
        if spec.args_hint:
            text.append(f" {spec.args_hint}", style="italic dim")
        text.append(f"  {spec.description}", style="dim")
        if spec.aliases:
            text.append(f"  ({', '.join('/' + a for a in spec.aliases)})", style="dim")
        return text
