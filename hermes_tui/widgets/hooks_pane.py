"""The Hooks pane: the event hooks loaded from ``HERMES_HOME/hooks`` and each one's last error.

One line per hook (its name and the events it listens for), a red second line with its last
failure (raised, timed out, skipped while stuck) and when; hook directories that could not be
loaded are listed in red with the reason. The pane is hidden while the home has no hooks, so
a home without any looks as it always did.

It is filled from the hooks feature's state when the gateway is ready (:meth:`attach`) and
kept current by the feature's events (``HooksLoaded``, ``HookFailed``).
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from hermes_gateway.hooks.events import HookFailed, HooksLoaded
from hermes_gateway.text import one_line
from hermes_tui import gateway_messages as gm

ERROR_CHARS = 120


class HooksPane(Vertical):
    """Loaded hooks, problems and last errors; hidden when there is nothing to list."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Hooks"
        self.loaded: HooksLoaded | None = None
        self.errors: dict[str, HookFailed] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="hooks-list")

    def on_mount(self) -> None:
        self._refresh_list()

    def attach(self, loaded: HooksLoaded | None, errors: dict[str, HookFailed]) -> None:
        """The feature's state when the app connects (events published earlier included)."""
        if loaded is not None:
            self.loaded = loaded
        self.errors.update(errors)
        self._refresh_list()

    @on(gm.HooksLoaded)
    def _on_loaded(self, message: gm.HooksLoaded) -> None:
        self.loaded = message.event
        self.errors.clear()
        self._refresh_list()

    @on(gm.HookFailed)
    def _on_failed(self, message: gm.HookFailed) -> None:
        self.errors[message.event.hook] = message.event
        self._refresh_list()

    def _refresh_list(self) -> None:
        loaded = self.loaded
        hooks = loaded.hooks if loaded is not None else ()
        problems = loaded.problems if loaded is not None else ()
        self.set_class(not hooks and not problems and not self.errors, "-empty")
        text = Text()
        for hook in hooks:
            if text:
                text.append("\n")
            failure = self.errors.get(hook.name)
            text.append("✗ " if failure else "● ", style="red" if failure else "green")
            text.append(hook.name, style="bold")
            text.append(f"  {', '.join(hook.events)}", style="dim")
            if failure is not None:
                when = time.strftime("%H:%M", time.localtime(failure.ts))
                error = one_line(failure.error, ERROR_CHARS)
                text.append(f"\n  {when} {failure.event}: {error}", style="red")
        for problem in problems:
            if text:
                text.append("\n")
            text.append("✗ ", style="red")
            text.append(problem.name, style="bold red")
            text.append(f"  not loaded: {one_line(problem.error, ERROR_CHARS)}", style="red")
        dropped = self.errors.get("(hooks)")
        if dropped is not None:
            text.append(f"\n{one_line(dropped.error, ERROR_CHARS)}", style="yellow")
        self.query_one("#hooks-list", Static).update(text)
