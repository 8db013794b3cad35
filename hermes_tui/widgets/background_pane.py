"""The Background pane: ``/background`` runs of every chat, live.

Each run shows its prompt, which chat asked, how far it got (tool steps, time) and how it
ended; an ended run adds a line with the start of its result. Enter opens the run's own
session (its whole transcript). The pane is hidden until a run exists, so the sidebar keeps
its room for the chats.

It is fed only by ``BackgroundRunChanged`` events from the bus (routed by the main screen).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from hermes_gateway.background.events import BackgroundRunChanged
from hermes_gateway.models import LOCAL_PLATFORM
from hermes_gateway.text import one_line
from hermes_tui import gateway_messages as gm
from hermes_tui.messages import SessionSelected

__all__ = ["BackgroundList", "BackgroundPane"]

KEEP_ENDED = 20
"""Ended runs kept listed (the newest); their sessions stay in the history."""

MARKS: dict[str, tuple[str, str]] = {
    "started": ("▶ ", "bold yellow"),
    "progress": ("▶ ", "bold yellow"),
    "finished": ("✓ ", "green"),
    "failed": ("✗ ", "red"),
    "stopped": ("■ ", "dim"),
    "interrupted": ("⚠ ", "yellow"),
}
WORDS = {
    "started": "running",
    "progress": "running",
    "finished": "done",
    "failed": "failed",
    "stopped": "stopped",
    "interrupted": "interrupted by a restart",
}
RUNNING = ("started", "progress")


class BackgroundList(OptionList):
    """The run rows; Enter opens the selected run's session."""

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        pane = self.parent
        if isinstance(pane, BackgroundPane) and event.option.id is not None:
            pane.open_run(event.option.id)

    def on_resize(self) -> None:
        pane = self.parent
        if isinstance(pane, BackgroundPane):
            pane.redraw()


class BackgroundPane(Vertical):
    """Background runs, running ones first; hidden while there is none."""

    BORDER_TITLE = "Background"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs: dict[str, BackgroundRunChanged] = {}
        """Run id -> its latest event."""
        self.clock: Callable[[], float] = time.time
        """For the time a run has taken (a snapshot test fixes it)."""
        self.add_class("-none")

    def compose(self) -> ComposeResult:
        yield BackgroundList(id="background-list", compact=True)

    @property
    def rows(self) -> BackgroundList:
        return self.query_one(BackgroundList)

    def on_mount(self) -> None:
        self.set_interval(1, self._tick, name="background-clock")

    def _tick(self) -> None:
        if any(e.state in RUNNING for e in self.runs.values()):
            self.redraw()

    @on(gm.BackgroundRunChanged)
    def _on_run(self, message: gm.BackgroundRunChanged) -> None:
        self.on_run(message.event)

    def on_run(self, event: BackgroundRunChanged) -> None:
        """Keep a run's latest state, drop the oldest ended ones, tell the person how it
        ended."""
        self.runs.pop(event.run_id, None)
        self.runs[event.run_id] = event  # insertion order is recency
        ended = [k for k, e in self.runs.items() if e.state not in RUNNING]
        for run_id in ended[:-KEEP_ENDED]:
            del self.runs[run_id]
        self._announce(event)
        self.redraw()

    def _announce(self, event: BackgroundRunChanged) -> None:
        what = one_line(event.prompt, 60)
        if event.state == "finished" and not event.delivery_error:
            self.notify(f"Background task done: {what}", timeout=4)
        elif event.state == "finished":
            self.notify(
                f"Background task done, not delivered: {event.delivery_error}",
                severity="warning",
            )
        elif event.state in ("failed", "interrupted"):
            self.notify(f"Background task {WORDS[event.state]}: {what}", severity="warning")

    def redraw(self) -> None:
        self.set_class(not self.runs, "-none")
        rows = self.rows
        highlighted = rows.highlighted_option.id if rows.highlighted_option else None
        ordered = sorted(self.runs.values(), key=_order)
        width = rows.scrollable_content_region.width
        now = self.clock()
        rows.clear_options()
        rows.add_options([Option(_label(e, now, width), id=e.run_id) for e in ordered])
        if ordered:
            rows.highlighted = next(
                (i for i, e in enumerate(ordered) if e.run_id == highlighted), 0
            )

    def open_run(self, run_id: str) -> None:
        """Show the run's own session in the conversation."""
        event = self.runs.get(run_id)
        if event is not None:
            self.post_message(SessionSelected(event.session_key, event.session_id or None))


def _order(event: BackgroundRunChanged) -> tuple[int, float]:
    """Running ones first (oldest first), then ended ones (newest first)."""
    if event.state in RUNNING:
        return (0, event.started_at)
    return (1, -event.ts)


def _label(event: BackgroundRunChanged, now: float, width: int) -> Text:
    mark, style = MARKS.get(event.state, ("• ", "dim"))
    head = Text(mark, style=style)
    head.append(one_line(event.prompt, 200), style="bold")
    detail = Text("  ")
    detail.append(WORDS.get(event.state, event.state), style=style if style != "dim" else "")
    if event.steps:
        detail.append(f" · {event.steps} step{'s' if event.steps != 1 else ''}", style="cyan")
    if event.state in RUNNING and event.started_at:
        detail.append(f" · {_duration(now - event.started_at)}", style="dim")
    chat = "terminal" if event.origin_key.startswith(f"{LOCAL_PLATFORM}:") else event.origin_key
    detail.append(f" · {chat}", style="dim")
    lines = [head, detail]
    if event.state in RUNNING and event.tool:
        lines.append(Text.assemble(("  ⚙ ", "dim"), (event.tool, "dim")))
    if event.result and event.state not in RUNNING:
        body = event.result.split("\n\n", 1)[-1]  # after the "✅ ... done" head line
        lines.append(Text.assemble(("  ↳ ", "dim"), one_line(body, max(width, 20))))
    if width > 0:
        for line in lines:
            line.truncate(width, overflow="ellipsis")
    return Text("\n").join(lines)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m {seconds % 60:02d}s"
