"""One agent answer on its way into an HTTP response: the API server's ``TurnDelivery``.

The agent calls ``on_delta`` and the tool hooks synchronously from its stream loop; they only
append to a list and wake the request handler, which writes everything pending in one socket
write. So a fast model costs one write per wake-up rather than per token, and a slow client
never stalls the agent (aiohttp buffers; the handler alone waits for the socket).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import TurnResult
    from hermes_gateway.store import SessionRecord

TurnOutcome = tuple["SessionRecord", "TurnResult"]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tells a reverse proxy (nginx) not to buffer the stream
}


@dataclass(slots=True)
class ToolProgress:
    """A tool starting or finishing, as streamed to API clients."""

    tool: str
    label: str
    status: str
    """``running``, ``completed`` or ``failed``."""
    duration: float | None = None
    summary: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"tool": self.tool, "label": self.label, "status": self.status}
        if self.duration is not None:
            out["duration"] = round(self.duration, 3)
        if self.summary is not None:
            out["summary"] = self.summary
        return out


StreamItem = str | ToolProgress
"""Text to append to the answer, or a tool's progress."""


class AnswerStream:
    """Collects the answer; with ``streaming`` also queues items for the handler to write.

    The text is the agent's deltas joined, except leading whitespace: the agent separates
    the text of successive tool steps with a blank line, which would otherwise open an
    answer that starts with a tool call. Streamed and non-streamed answers are built the
    same way, so they are equal character for character.
    """

    __slots__ = (
        "_labels",
        "_wake",
        "error",
        "finished",
        "interrupted",
        "parts",
        "pending",
        "progress",
        "streaming",
    )

    def __init__(self, *, streaming: bool, progress: bool = False) -> None:
        self.streaming = streaming
        self.progress = streaming and progress
        """Queue tool progress too (only clients that asked for it get it)."""
        self.parts: list[str] = []
        self.pending: list[StreamItem] = []
        self.finished = False
        self.interrupted = False
        self.error: str | None = None
        self._wake = asyncio.Event()
        self._labels: dict[str, str] = {}

    @property
    def text(self) -> str:
        return "".join(self.parts)

    # --- TurnDelivery -------------------------------------------------------------------

    def on_delta(self, text: str) -> None:
        if not self.parts:
            text = text.lstrip()
            if not text:
                return
        self.parts.append(text)
        if self.streaming:
            self._push(text)

    def on_tool_started(self, name: str, preview: str) -> None:
        if self.progress:
            self._labels[name] = preview
            self._push(ToolProgress(name, preview, "running"))

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        if self.progress:
            status = "completed" if ok else "failed"
            label = self._labels.pop(name, "")
            self._push(ToolProgress(name, label, status, duration, summary))

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        self.interrupted, self.error = interrupted, error
        self.close()

    # --- the handler's side -------------------------------------------------------------

    def close(self) -> None:
        """No more items will come (called by finish, or when the turn failed)."""
        self.finished = True
        self._wake.set()

    async def next_batch(self) -> list[StreamItem]:
        """Everything queued since the last call; waits for something. ``[]`` means done."""
        while not self.pending and not self.finished:
            self._wake.clear()
            await self._wake.wait()
        batch, self.pending = self.pending, []
        return batch

    def _push(self, item: StreamItem) -> None:
        self.pending.append(item)
        self._wake.set()


async def run_turn(answer: AnswerStream, turn: Awaitable[TurnOutcome]) -> TurnOutcome:
    """Await the turn and close the answer stream however it ends, so the writer stops."""
    try:
        return await turn
    finally:
        answer.close()
