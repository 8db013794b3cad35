"""The status line: model, session, tokens, and trouble (loop stalls, errors)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusLine(Static):
    model: reactive[str] = reactive("")
    session: reactive[str] = reactive("")
    tokens: reactive[int] = reactive(0)
    busy: reactive[bool] = reactive(False)
    lag_ms: reactive[float] = reactive(0.0)
    message: reactive[str] = reactive("")
    alerts: reactive[int] = reactive(0)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" ◆ ", style="bold magenta")
        text.append(self.model or "no model", style="bold")
        text.append("  │  ", style="dim")
        text.append(self.session or "new session")
        text.append("  │  ", style="dim")
        text.append(f"{self.tokens:,} tokens")
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
