"""The autocomplete list that opens above the input when a line starts with ``/``.

Entries come from the gateway's command registry (names, aliases, argument hints,
descriptions), so whatever ``/help`` lists is what completes.
"""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from hermes_gateway.commands.registry import CommandRegistry, CommandSpec

MODEL_PREFIX = "/model "


class SlashComplete(OptionList):
    class ModelsWanted(Message):
        """``/model `` was typed and the server's model list is not loaded yet."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.registry: CommandRegistry | None = None
        self.matches: list[CommandSpec | str] = []
        self.models: list[str] | None = None
        """The models ``/model`` may switch to (configured and served), once loaded."""

    def update_for(self, text: str) -> bool:
        """Show the commands matching ``text`` (or, after ``/model ``, the models)."""
        if text.startswith(MODEL_PREFIX) and "\n" not in text:
            return self._update_models(text[len(MODEL_PREFIX) :])
        if self.registry is None or not text.startswith("/") or " " in text or "\n" in text:
            self.close()
            return False
        self.matches = list(self.registry.complete(text[1:], platform="local"))
        if not self.matches:
            self.close()
            return False
        self.clear_options()
        self.add_options(
            [
                Option(self._label(spec), id=spec.name)
                for spec in self.matches
                if not isinstance(spec, str)
            ]
        )
        self.highlighted = 0
        self.display = True
        return True

    def _update_models(self, prefix: str) -> bool:
        if " " in prefix.strip():
            self.close()
            return False
        if self.models is None:
            self.close()
            self.post_message(self.ModelsWanted())
            return False
        needle = prefix.strip().lower()
        found = [m for m in self.models if m.lower().startswith(needle)]
        found += [m for m in self.models if needle in m.lower() and m not in found]
        if not found or found == [prefix.strip()]:
            self.close()
            return False
        self.matches = list(found)
        self.clear_options()
        self.add_options(
            [Option(Text(f"/model {m}", style="bold"), id=f"model:{m}") for m in found]
        )
        self.highlighted = 0
        self.display = True
        return True

    @property
    def is_open(self) -> bool:
        return bool(self.display) and bool(self.matches)

    def close(self) -> None:
        self.matches = []
        self.display = False

    def selected(self) -> CommandSpec | str | None:
        """The highlighted command, or a model name (a string) after ``/model ``."""
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
