"""The Tool progress pane: each tool call with a spinner, then its duration and outcome."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.containers import VerticalScroll
from textual.widgets import Static

from hermes_tui import gateway_messages as gm
from hermes_tui.widgets.follow import follow

if TYPE_CHECKING:
    from textual.timer import Timer

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MAX_ROWS = 100


class ToolRow(Static):
    def __init__(self, call_id: str, name: str, preview: str, session_key: str = "") -> None:
        super().__init__("", markup=False)
        self.session_key = session_key
        self.call_id = call_id
        self.tool_name = name
        self.preview = preview
        self.started = time.monotonic()
        self.done = False
        self.ok = True
        self.duration = 0.0
        self.summary = ""
        self.frame = 0

    def on_mount(self) -> None:
        self.refresh_row()

    def refresh_row(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.done:
            text.append("✓ " if self.ok else "✗ ", style="green" if self.ok else "red")
        else:
            text.append(SPINNER[self.frame % len(SPINNER)] + " ", style="yellow")
        text.append(self.tool_name, style="bold")
        if self.preview:
            text.append(f"  {self.preview}", style="dim")
        if self.done:
            text.append(f"  {self.duration:.1f}s", style="cyan")
            if self.summary:
                text.append(f"  {self.summary}")
        elif (elapsed := time.monotonic() - self.started) >= 1:
            text.append(f"  {elapsed:.0f}s", style="dim")
        self.update(text)

    def finish(self, ok: bool, duration: float, summary: str) -> None:
        self.done, self.ok, self.duration, self.summary = True, ok, duration, summary
        self.set_class(not ok, "failed")
        self.refresh_row()


class ToolProgressPane(VerticalScroll):
    """The live summary of tool calls: every session's are kept (up to ``MAX_ROWS``), the
    shown session's (``session_key``) are displayed, so switching chats and back loses none.

    The "no tool calls" line is one widget shown or hidden, never mounted twice: two quick
    selections cannot collide on its id.
    """

    BORDER_TITLE = "Tools"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session_key: str | None = None
        self._rows: dict[str, ToolRow] = {}
        self._timer: Timer | None = None
        self._empty = Static("No tool calls yet.", id="tools-empty", classes="empty")

    def compose(self):
        yield self._empty

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.1, self._spin, pause=True)

    @property
    def running(self) -> int:
        return sum(1 for r in self._rows.values() if not r.done)

    @property
    def shown_rows(self) -> list[ToolRow]:
        return [r for r in self._rows.values() if r.session_key == self.session_key]

    @on(gm.ToolStarted)
    async def _on_tool_started(self, message: gm.ToolStarted) -> None:
        event = message.event
        await self.tool_started(event.call_id, event.name, event.preview, event.session_key)

    @on(gm.ToolFinished)
    def _on_tool_finished(self, message: gm.ToolFinished) -> None:
        event = message.event
        self.tool_finished(event.call_id, event.ok, event.duration, event.summary)

    async def tool_started(
        self, call_id: str, name: str, preview: str, session_key: str | None = None
    ) -> None:
        key = session_key if session_key is not None else self.session_key or ""
        row = ToolRow(call_id, name, preview, key)
        row.display = key == self.session_key
        self._rows[call_id] = row
        await self.mount(row)
        self._show_empty()
        follow(self)
        if len(self._rows) > MAX_ROWS:
            oldest = next(iter(self._rows))
            await self._rows.pop(oldest).remove()
        if self._timer is not None and self.app.animation_level != "none":
            self._timer.resume()  # reduced motion (TEXTUAL_ANIMATIONS=none): a still spinner

    def tool_finished(self, call_id: str, ok: bool, duration: float, summary: str) -> None:
        row = self._rows.get(call_id)
        if row is not None:
            row.finish(ok, duration, summary)

    def show(self, session_key: str | None) -> None:
        """Display ``session_key``'s tool calls (kept while other sessions were shown)."""
        self.session_key = session_key
        for row in self._rows.values():
            row.display = row.session_key == session_key
        self._show_empty()
        follow(self)

    def _show_empty(self) -> None:
        """With no calls to show the pane steps aside: the conversation gets its rows."""
        empty = not self.shown_rows
        self._empty.display = empty
        self.set_class(empty, "-empty")

    def _spin(self) -> None:
        active = [r for r in self._rows.values() if not r.done]
        for row in active:
            row.frame += 1
            if row.display:
                row.refresh_row()
        if not active and self._timer is not None:
            self._timer.pause()
