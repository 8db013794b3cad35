"""The status line: model, session, tokens, and trouble (loop stalls, errors)."""

from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.reactive import reactive
from textual.widgets import Static

from hermes_gateway.agent.context import context_share
from hermes_tui import gateway_messages as gm

SHOWN_LAG_S = 1.0
"""Loop stalls at least this long are shown in the status line."""


class StatusLine(Static):
    """The shown session's model, title, tokens and whether it is answering.

    :meth:`show` sets them from a loaded session; turn and session messages keep them current,
    so nothing is read back from the gateway in between.
    """

    model: reactive[str] = reactive("")
    session: reactive[str] = reactive("")
    tokens: reactive[int] = reactive(0)
    busy: reactive[bool] = reactive(False)
    lag_ms: reactive[float] = reactive(0.0)
    message: reactive[str] = reactive("")
    alerts: reactive[int] = reactive(0)
    context: reactive[str] = reactive("")
    """How full the model's window is after the last turn (``42% of 128k``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session_key: str | None = None
        self.last_lag_ms = 0.0
        """The latest loop stall reported, shown or not (the F1 screen lists it)."""
        self._tokens_as_of = 0.0
        """When ``tokens`` was read from the store: older TurnFinished are already in it."""

    def show(self, key: str, *, title: str | None, model: str, tokens: int, busy: bool) -> None:
        self.session_key = key
        self.session = title or "untitled session"
        self.model = model
        self.tokens = tokens
        self._tokens_as_of = time.time()
        self.busy = busy
        self.context = ""

    @on(gm.TurnStarted)
    def _on_turn_started(self, message: gm.TurnStarted) -> None:
        if message.event.session_key == self.session_key:
            self.busy = True

    @on(gm.TurnFinished)
    def _on_turn_finished(self, message: gm.TurnFinished) -> None:
        event = message.event
        if event.session_key != self.session_key:
            return
        self.busy = False
        if event.ts > self._tokens_as_of:
            self.tokens += event.prompt_tokens + event.completion_tokens
        if event.context_length:
            self.context = context_share(event.context_tokens, event.context_length)

    @on(gm.ContextCompressed)
    def _on_compressed(self, message: gm.ContextCompressed) -> None:
        event = message.event
        if event.session_key == self.session_key and not event.error:
            self.context = context_share(event.tokens_after, event.context_length)

    @on(gm.SessionChanged)
    def _on_session_changed(self, message: gm.SessionChanged) -> None:
        event = message.event
        if event.session_key != self.session_key:
            return
        self.session = event.title or "untitled session"
        if event.reason == "reset":
            self.context = ""
        if event.model:
            self.model = event.model

    @on(gm.LoopLag)
    def _on_loop_lag(self, message: gm.LoopLag) -> None:
        """Only a stall a person notices (a second or more) is shown; shorter ones are in the
        log and on the F1 screen."""
        lag = message.event.lag
        self.last_lag_ms = lag * 1000
        if lag < SHOWN_LAG_S:
            return
        self.lag_ms = lag * 1000
        self.set_timer(5, self._clear_lag)

    def _clear_lag(self) -> None:
        self.lag_ms = 0

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" ◆ ", style="bold magenta")
        text.append(self.model or "no model", style="bold")
        text.append("  │  ", style="dim")
        text.append(self.session or "new session")
        text.append("  │  ", style="dim")
        text.append(f"{self.tokens:,} tokens")
        if self.context:
            text.append(f" · context {self.context}", style="dim")
        if self.busy:
            text.append("  │  ", style="dim")
            text.append("answering… (Ctrl+C stops)", style="yellow")
        if self.lag_ms:
            text.append("  │  ", style="dim")
            text.append(f"loop stalled {self.lag_ms:.0f} ms", style="red")
        if self.alerts:
            text.append("  │  ", style="dim")
            text.append(f"🔔 {self.alerts} (F9)", style="bold yellow")
        if self.message:
            text.append("  │  ", style="dim")
            text.append(self.message, style="italic")
        return text
