"""Tool progress in the chat: one message that collects a line per tool call.

``display.tool_progress`` decides what appears:

* ``off``: nothing;
* ``new``: a line only the first time a tool name is used in the turn;
* ``all``: a line for every call;
* ``verbose``: every call with a longer argument preview, plus a result line.

Lines read ``⚙ terminal: ls -la`` while a call runs; in ``new``/``all`` the same line then
becomes ``✓ terminal: ls -la (0.4s)`` (``✗`` on failure); ``verbose`` keeps the start line
and adds ``✓ terminal 0.4s: <result preview>``.

A message per tool would flood the chat and burn the platform's rate limit, so the lines
are sent once and then edited into the same message (a new message is started only when
the platform's limit is reached). Callbacks never wait for the network: they update the
lines and a background task, paced by the chat's :class:`RateGate`, brings the message up
to date; :meth:`ToolProgressMessage.flush` waits for that.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hermes_gateway.delivery.chunking import truncate
from hermes_gateway.delivery.errors import (
    EditFailed,
    FormattingRejected,
    GateClosed,
    MessageNotModified,
    PermanentDeliveryError,
)
from hermes_gateway.delivery.rate_gate import RateGate
from hermes_gateway.text import one_line, stopwatch

if TYPE_CHECKING:
    from hermes_gateway.delivery.transport import MessageTransport

__all__ = ["ToolProgressMessage", "ToolProgressMode"]

log = logging.getLogger(__name__)

ToolProgressMode = Literal["off", "new", "all", "verbose"]

STARTED = "⚙"
OK = "✓"
FAILED = "✗"
SHORT_PREVIEW = 60
LONG_PREVIEW = 300


@dataclass(eq=False)
class _Line:
    name: str
    preview: str
    text: str


@dataclass(eq=False)
class _Msg:
    start: int  # first line index
    end: int  # one past the last line index
    id: str | None = None
    shown: str = ""
    dead: bool = False  # can no longer be edited


class ToolProgressMessage:
    """Collects one turn's tool lines into one edited message per chat.

    Args:
        transport: The platform's send/edit.
        chat: Chat id, also the rate gate's key.
        gate: The gate shared by everything that writes to this chat.
        mode: ``display.tool_progress``.
    """

    def __init__(
        self,
        transport: MessageTransport,
        chat: str,
        gate: RateGate,
        mode: ToolProgressMode = "new",
    ) -> None:
        if mode not in ("off", "new", "all", "verbose"):
            raise ValueError(f"unknown tool progress mode: {mode!r}")
        self.transport = transport
        self.chat = chat
        self.gate = gate
        self.mode: ToolProgressMode = mode
        self._lines: list[_Line] = []
        self._open: dict[str, deque[int]] = {}  # tool name -> lines awaiting their finish
        self._seen: set[str] = set()
        self._msgs: list[_Msg] = []
        self._dirty = False
        self._worker: asyncio.Task[None] | None = None
        self._disabled = mode == "off"

    @property
    def lines(self) -> list[str]:
        """The progress lines as they should read now."""
        return [line.text for line in self._lines]

    @property
    def message_ids(self) -> list[str]:
        return [m.id for m in self._msgs if m.id is not None]

    # -- callbacks (synchronous, for the runner's sink) -----------------------------
    def on_tool_started(self, name: str, preview: str) -> None:
        """Record a started tool call and schedule the message update."""
        if self._disabled:
            return
        if self.mode == "new" and name in self._seen:
            return
        self._seen.add(name)
        limit = LONG_PREVIEW if self.mode == "verbose" else SHORT_PREVIEW
        shown = one_line(preview, limit, trim=True) if preview else ""
        text = f"{STARTED} {name}: {shown}" if shown else f"{STARTED} {name}"
        self._open.setdefault(name, deque()).append(len(self._lines))
        self._add(_Line(name, shown, text))

    def on_tool_finished(self, name: str, ok: bool, duration: float, result_preview: str) -> None:
        """Mark a call finished: update its line (or, in verbose mode, add a result line)."""
        if self._disabled:
            return
        pending = self._open.get(name)
        if not pending:
            if self.mode == "new":
                return  # a repeated call of a tool that already has its line
            index = None
        else:
            index = pending.popleft()
        icon = OK if ok else FAILED
        took = stopwatch(duration)
        if self.mode == "verbose":
            result = one_line(result_preview, LONG_PREVIEW, trim=True) if result_preview else ""
            text = f"{icon} {name} {took}" + (f": {result}" if result else "")
            self._add(_Line(name, result, text))
            return
        if index is None:
            self._add(_Line(name, "", f"{icon} {name} {took}"))
            return
        line = self._lines[index]
        line.text = (
            f"{icon} {name}: {line.preview} ({took})" if line.preview else f"{icon} {name} {took}"
        )
        line.text = self._fit(line.text)
        self._kick()

    # -- async API ------------------------------------------------------------------
    async def tool_started(self, name: str, preview: str) -> None:
        """Async form of :meth:`on_tool_started` (returns without waiting for the network)."""
        self.on_tool_started(name, preview)

    async def tool_finished(
        self, name: str, ok: bool, duration: float, result_preview: str
    ) -> None:
        """Async form of :meth:`on_tool_finished`."""
        self.on_tool_finished(name, ok, duration, result_preview)

    async def flush(self) -> None:
        """Wait until the chat shows the current lines (or delivery gave up)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def close(self) -> None:
        """Flush and stop accepting lines (the turn is over)."""
        await self.flush()
        self._disabled = True

    # -- internals ------------------------------------------------------------------
    def _fit(self, text: str) -> str:
        t = self.transport
        return text if t.measure(text) <= t.limit else truncate(text, t.limit, measure=t.measure)

    def _add(self, line: _Line) -> None:
        line.text = self._fit(line.text)
        self._lines.append(line)
        self._kick()

    def _kick(self) -> None:
        self._dirty = True
        if self._worker is None or self._worker.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._worker = loop.create_task(self._run(), name=f"tool-progress:{self.chat}")

    async def _run(self) -> None:
        while self._dirty and not self._disabled:
            self._dirty = False
            try:
                await self._sync()
            except (PermanentDeliveryError, GateClosed):
                log.info("tool progress disabled for %s", self.chat, exc_info=True)
                self._disabled = True
            except Exception:
                # Progress is cosmetic: never let it break the turn. The next change retries.
                log.warning("tool progress update failed in %s", self.chat, exc_info=True)
                return

    def _pack(self) -> None:
        """Assign new lines to the last message while it fits, else to a new one."""
        t = self.transport
        if not self._msgs or self._msgs[-1].dead:
            start = self._msgs[-1].end if self._msgs else 0
            self._msgs.append(_Msg(start, start))
        last = self._msgs[-1]
        while last.end < len(self._lines):
            wider = "\n".join(line.text for line in self._lines[last.start : last.end + 1])
            if last.end == last.start or t.measure(wider) <= t.limit:
                last.end += 1
            else:
                last = _Msg(last.end, last.end)
                self._msgs.append(last)

    async def _sync(self) -> None:
        self._pack()
        t, chat = self.transport, self.chat
        for m in self._msgs:
            text = "\n".join(line.text for line in self._lines[m.start : m.end])
            if not text or text == m.shown or m.dead:
                continue
            if m.id is None:
                m.id = str(await self.gate.run(chat, functools.partial(t.send_text, chat, text)))
                m.shown = text
                continue
            mid = m.id
            try:
                await self.gate.run(
                    chat,
                    functools.partial(t.edit_text, chat, mid, text),
                    coalesce_key=f"edit:{mid}",
                )
            except MessageNotModified:
                pass
            except (EditFailed, FormattingRejected):
                m.dead = True
                if m is self._msgs[-1]:
                    # Lines it never showed move to a new message on the next pass.
                    m.end = m.start + (m.shown.count("\n") + 1 if m.shown else 0)
                    self._dirty = True
                return
            m.shown = text
