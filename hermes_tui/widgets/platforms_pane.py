"""The Platforms pane: the state of each platform the gateway serves."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual import on
from textual.widgets import Static

from hermes_gateway.events import PlatformCounters, PlatformStatus
from hermes_tui import gateway_messages as gm

STATE_STYLE = {
    "connected": ("●", "green"),
    "starting": ("◌", "yellow"),
    "reconnecting": ("◌", "yellow"),
    "paused": ("‖", "blue"),
    "failed": ("✗", "red"),
    "stopped": ("○", "dim"),
}


class PlatformsPane(Static):
    """Each platform's state (``PlatformStatus``) and counters (``PlatformCounters``).

    Both arrive as events when they change; nothing is polled.
    """

    BORDER_TITLE = "Platforms"

    def __init__(self, **kwargs) -> None:
        super().__init__("starting…", **kwargs)
        self.states: dict[str, tuple[PlatformStatus, float]] = {}
        self.stats: dict[str, PlatformCounters] = {}
        self.plain = ""
        """What the pane shows, as plain text (for tests and screen readers)."""

    @on(gm.PlatformStatus)
    def _on_status(self, message: gm.PlatformStatus) -> None:
        self.set_status(message.event)

    @on(gm.PlatformCounters)
    def _on_counters(self, message: gm.PlatformCounters) -> None:
        self.set_counters(message.event)

    def set_counters(self, counters: PlatformCounters) -> None:
        """Messages in and out and the last error of one platform."""
        self.stats[counters.platform] = counters
        if self.states:
            self._render_table()

    def show_error(self, text: str) -> None:
        """The gateway did not start: the reason instead of "starting…"."""
        self.plain = text
        self.update(Text(text, style="red"))

    def set_status(self, status: PlatformStatus) -> None:
        self.states[status.platform] = (status, time.monotonic())
        self._render_table()

    def _render_table(self) -> None:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=1)
        table.add_column(ratio=1, no_wrap=True)
        for name, (status, seen) in sorted(self.states.items()):
            mark, style = STATE_STYLE.get(status.state, ("?", ""))
            detail: str = status.state
            if status.state == "reconnecting" and status.retry_in:
                left = max(0.0, status.retry_in - (time.monotonic() - seen))
                detail = f"reconnecting in {left:.0f}s"
            elif status.state == "failed" and status.detail:
                detail = f"failed: {status.detail}"
            line = Text(f"{name} ", style="bold")
            line.append(detail, style=style)
            counts = self.stats.get(name)
            if counts is not None and name != "local":
                line.append(f"  ↓{counts.received} ↑{counts.sent}", style="dim")
                if counts.last_error and status.state != "failed":
                    line.append(f"\n  last error: {counts.last_error}", style="red dim")
            table.add_row(Text(mark, style=style), line)
        self.plain = "\n".join(
            f"{name} {status.state}"
            + (
                f" ↓{self.stats[name].received} ↑{self.stats[name].sent}"
                if name in self.stats and name != "local"
                else ""
            )
            for name, (status, _) in sorted(self.states.items())
        )
        self.update(table)
