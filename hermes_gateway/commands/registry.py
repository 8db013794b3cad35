"""The one registry of slash commands.

The TUI input, Telegram, Discord and the API server all dispatch through it, and the
autocomplete list, ``/help`` and the bots' command menus are generated from it, so a command
is declared once. A command never touches a widget or a chat: it returns a
:class:`CommandResult` that the platform renders.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hermes_gateway.commands.host import CommandHost
    from hermes_gateway.models import MessageEvent, SessionSource

Scope = Literal["any", "local"]


@dataclass
class CommandResult:
    text: str
    ok: bool = True
    action: str | None = None
    """Something only the platform can do, e.g. ``"quit"`` for the local TUI."""


@dataclass(frozen=True)
class CommandVerdict:
    """What a gate (the hooks' ``command:<name>``) decided before a command runs: ``deny``
    (``text`` is the refusal), ``handled`` (``text`` is the reply, possibly none) or
    ``rewrite`` (run ``/command args`` instead)."""

    action: Literal["deny", "handled", "rewrite"]
    text: str = ""
    command: str = ""
    args: str = ""


CommandGate = Callable[["MessageEvent", str, str, str], Awaitable["CommandVerdict | None"]]
"""``gate(event, canonical name, name as typed, args)``: None lets the command run."""


@dataclass
class CommandContext:
    """What a command handler gets: the gateway's narrow command face and the message."""

    host: CommandHost
    event: MessageEvent
    name: str
    args: str

    @property
    def source(self) -> SessionSource:
        return self.event.source

    @property
    def session_key(self) -> str:
        return self.event.session_key


Handler = Callable[[CommandContext], Awaitable[CommandResult]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    handler: Handler = field(compare=False, repr=False)
    category: str = "Session"
    aliases: tuple[str, ...] = ()
    args_hint: str = ""
    scope: Scope = "any"

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args_hint}".rstrip()

    def allowed_on(self, platform: str) -> bool:
        return self.scope == "any" or platform == "local"


def parse_command(text: str, *, bot_username: str | None = None) -> tuple[str, str] | None:
    """Split ``/name@bot args`` into ``(name, args)``; None if it is not a command for us.

    ``/cmd@otherbot`` in a group is addressed to another bot and is not ours.
    """
    if not text.startswith("/") or len(text) < 2 or text[1].isspace():
        return None
    parts = text[1:].split(maxsplit=1)
    args = parts[1].strip() if len(parts) > 1 else ""
    name, _, target = parts[0].partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    # Telegram's menu cannot show hyphens, so its entries use underscores: map them back.
    return name.lower().replace("_", "-"), args


class CommandRegistry:
    def __init__(self, specs: Iterable[CommandSpec] = ()) -> None:
        self._specs: dict[str, CommandSpec] = {}
        self._lookup: dict[str, CommandSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: CommandSpec) -> None:
        for name in (spec.name, *spec.aliases):
            if name in self._lookup:
                raise ValueError(f"command name /{name} is already registered")
        self._specs[spec.name] = spec
        for name in (spec.name, *spec.aliases):
            self._lookup[name] = spec

    def replace(self, spec: CommandSpec) -> CommandSpec:
        """Put ``spec`` in place of the registered command of the same name and aliases, and
        return the one it replaces.

        Why: a feature extends a built-in without the core knowing it (``/stop`` also stops
        the chat's background runs); its wrapper calls the replaced handler.

        Raises:
            ValueError: No such command, or the names differ (aliases would go stale).
        """
        old = self._specs.get(spec.name)
        if old is None:
            raise ValueError(f"no command /{spec.name} to replace")
        if old.aliases != spec.aliases:
            raise ValueError(f"/{spec.name} must keep its aliases {old.aliases}")
        self._specs[spec.name] = spec
        for name in (spec.name, *spec.aliases):
            self._lookup[name] = spec
        return old

    def command(
        self,
        name: str,
        description: str,
        *,
        category: str = "Session",
        aliases: tuple[str, ...] = (),
        args_hint: str = "",
        scope: Scope = "any",
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def wrap(handler: Handler) -> Handler:
            self.register(
                CommandSpec(name, description, handler, category, aliases, args_hint, scope)
            )
            return handler

        return wrap

    def resolve(self, name: str) -> CommandSpec | None:
        return self._lookup.get(name.lower())

    def specs(self, platform: str | None = None) -> list[CommandSpec]:
        specs = list(self._specs.values())
        if platform is not None:
            specs = [s for s in specs if s.allowed_on(platform)]
        return specs

    def suggest(self, name: str, platform: str | None = None) -> list[str]:
        """Close names for a mistyped command (prefix matches first)."""
        names = [n for n, s in self._lookup.items() if platform is None or s.allowed_on(platform)]
        prefix = sorted(n for n in names if n.startswith(name.lower()))
        fuzzy = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
        seen: dict[str, None] = {}
        for n in [*prefix, *fuzzy]:
            seen.setdefault(n, None)
        return list(seen)[:3]

    def complete(self, prefix: str, platform: str = "local") -> list[CommandSpec]:
        """Commands matching what the user typed after ``/``: prefix first, then fuzzy.

        Aliases match too but the canonical spec is returned once.
        """
        prefix = prefix.lower()
        specs = self.specs(platform)
        if not prefix:
            return specs
        starts = [s for s in specs if any(n.startswith(prefix) for n in (s.name, *s.aliases))]
        rest = [s for s in specs if s not in starts and _subsequence(prefix, s.name)]
        return starts + rest

    def help_text(self, platform: str) -> str:
        lines: list[str] = []
        categories: dict[str, list[CommandSpec]] = {}
        for spec in self.specs(platform):
            categories.setdefault(spec.category, []).append(spec)
        for category, specs in categories.items():
            lines.append(f"**{category}**")
            for spec in specs:
                alias = (
                    f" (alias {', '.join('/' + a for a in spec.aliases)})" if spec.aliases else ""
                )
                lines.append(f"- `{spec.usage}`: {spec.description}{alias}")
            lines.append("")
        return "\n".join(lines).strip()


def _subsequence(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)
