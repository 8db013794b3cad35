"""Streaming an answer into a chat by sending one message and editing it as it grows.

Shared by every platform that can edit messages (Telegram, Discord). The platform part is a
:class:`MessageTransport` (send, edit, its limit and how it measures text); everything else
lives here:

* the first message goes out once ``first_send_chars`` have arrived, so the user sees the
  answer start without a flurry of one-word messages;
* then at most one edit per ``edit_interval`` carries the newest text plus a cursor; every
  send and edit goes through the chat's :class:`RateGate`, which orders, paces and retries
  them after 429s;
* when the text outgrows the limit, the part that can no longer change (see
  :func:`~hermes_gateway.delivery.chunking.split_stream`) is frozen as a finished message and
  the answer continues in a new one;
* :meth:`StreamConsumer.finish` makes the chat show exactly ``split_message(final_text)``:
  edits where a message differs, sends for the chunks not shown yet. If the platform stops
  accepting edits, the rest of the answer is sent as new messages instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hermes_gateway.delivery.chunking import split_chunks, split_stream, truncate
from hermes_gateway.delivery.errors import (
    EditFailed,
    FormattingRejected,
    GateClosed,
    MessageNotModified,
    PermanentDeliveryError,
)
from hermes_gateway.delivery.rate_gate import RateGate
from hermes_gateway.delivery.tool_progress import ToolProgressMessage
from hermes_gateway.delivery.transport import MessageTransport

if TYPE_CHECKING:
    from hermes_gateway.delivery.tool_progress import ToolProgressMode

__all__ = ["SYSTEM_CLOCK", "Clock", "MessageTransport", "StreamConsumer", "StreamingTurn"]

log = logging.getLogger(__name__)

SURPLUS_TEXT = "…"
"""Shown by a message left over when the final answer needs fewer messages than were
streamed (only possible if the final text is not an extension of the streamed one)."""


class Clock(Protocol):
    """Where the consumer reads and waits out time, so tests can pace it exactly."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class _SystemClock:
    """Real time: ``time.monotonic`` (as the event loop uses) and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = _SystemClock()


@dataclass(eq=False)
class _Sent:
    """A message this consumer put in the chat."""

    id: str
    shown: str
    """Exactly what the platform shows (as we sent it, cursor included)."""
    start: int
    end: int
    """Span of the answer text represented by the message (without prefix or cursor)."""
    frozen: bool = False


class StreamConsumer:
    """Delivers one streamed answer to one chat.

    Args:
        transport: The platform's send/edit.
        chat: Chat id, also the rate gate's key.
        gate: The gate shared by everything that writes to this chat.
        first_send_chars: Characters to wait for before the first message.
        edit_interval: Minimum seconds between two update rounds while streaming.
        cursor: Appended while the answer is still being written.
        clock: Paces the edit rounds; real time unless a test injects its own.
    """

    def __init__(
        self,
        transport: MessageTransport,
        chat: str,
        gate: RateGate,
        *,
        first_send_chars: int = 40,
        edit_interval: float = 1.0,
        cursor: str = " ▌",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.transport = transport
        self.chat = chat
        self.gate = gate
        self.first_send_chars = first_send_chars
        self.edit_interval = edit_interval
        self.cursor = cursor
        self._clock = clock
        self._text = ""
        self._msgs: list[_Sent] = []
        self._edits_ok = True
        self._broken: int | None = None  # index of the message whose edit failed for good
        self._error: BaseException | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._last_round = float("-inf")
        self._done = False

    # -- public --------------------------------------------------------------------
    @property
    def text(self) -> str:
        """Everything fed so far (leading whitespace dropped)."""
        return self._text

    @property
    def message_ids(self) -> list[str]:
        return [m.id for m in self._msgs]

    def feed(self, delta: str) -> None:
        """Add streamed text; never blocks (the work happens in a background task)."""
        if self._done or self._closing.is_set() or not delta:
            return
        if not self._text:
            delta = delta.lstrip()
            if not delta:
                return
        self._text += delta
        if self._error is not None or not self._edits_ok:
            return
        self._wake.set()
        if self._worker is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: finish() will deliver everything
                return
            self._worker = loop.create_task(self._run(), name=f"stream:{self.chat}")

    async def finish(self, final_text: str) -> list[str]:
        """Make the chat show exactly ``split_message(final_text)``; return all message ids.

        Raises:
            PermanentDeliveryError: the chat cannot receive messages (also if that happened
                while streaming).
            DeliveryError: other failures of the final sends and edits.
        """
        if self._done:
            return self.message_ids
        await self._stop_worker()
        self._done = True
        if isinstance(self._error, PermanentDeliveryError):
            raise self._error
        return await self._reconcile(final_text)

    async def abort(self, note: str | None = None) -> None:
        """Finalise what was streamed so far (cursor removed), followed by ``note``."""
        body = self._text.rstrip()
        if note:
            body = f"{body}\n\n{note}" if body else note
        await self.finish(body)

    # -- streaming -----------------------------------------------------------------
    async def _stop_worker(self) -> None:
        self._closing.set()
        self._wake.set()
        worker = self._worker
        if worker is not None and not worker.done():
            try:
                await asyncio.shield(worker)
            except asyncio.CancelledError:
                worker.cancel()
                raise

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds on the clock, or less if :meth:`finish` begins meanwhile."""
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((sleeper, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            closing.cancel()

    async def _run(self) -> None:
        while not self._closing.is_set():
            await self._wake.wait()
            delay = self._last_round + self.edit_interval - self._clock.monotonic()
            if delay > 0:
                await self._pause(delay)
            if self._closing.is_set():
                return
            self._wake.clear()
            try:
                acted = await self._round()
            except (PermanentDeliveryError, GateClosed) as exc:
                self._error = exc
                return
            except Exception:
                # Transient trouble (network, exhausted retries): the next round retries,
                # because each round aims at the desired state rather than replaying steps.
                log.warning("streaming update failed in %s", self.chat, exc_info=True)
                acted = True
            if acted:
                self._last_round = self._clock.monotonic()
            if self._error is not None or not self._edits_ok:
                return

    async def _round(self) -> bool:
        """Bring the chat one step closer to the streamed text; True if anything was sent."""
        text = self._text
        if not self._msgs and len(text.strip()) < self.first_send_chars:
            return False
        t = self.transport
        frozen, tail = split_stream(text, t.limit, measure=t.measure)
        acted = False
        for idx, chunk in enumerate(frozen):
            if idx < len(self._msgs):
                m = self._msgs[idx]
                if m.frozen:
                    continue
                if m.shown != chunk.text:
                    acted = True
                    if not await self._edit(idx, chunk.text, chunk.start, chunk.end):
                        return True
                m.frozen = True
            else:
                acted = True
                await self._send(chunk.text, chunk.start, chunk.end, frozen=True)
        if tail is None:
            return acted
        room = t.limit - t.measure(self.cursor) - t.measure(tail.prefix)
        if room <= 0:
            return acted
        body = truncate(tail.body, room, measure=t.measure)
        if not body.strip():
            return acted
        display = tail.prefix + body + self.cursor
        idx = len(frozen)
        if idx < len(self._msgs):
            if self._msgs[idx].shown != display:
                acted = True
                await self._edit(idx, display, tail.start, tail.start + len(body))
        else:
            acted = True
            await self._send(display, tail.start, tail.start + len(body))
        return acted

    # -- operations ----------------------------------------------------------------
    async def _send(self, text: str, start: int, end: int, *, frozen: bool = False) -> str:
        t, chat = self.transport, self.chat
        mid = await self.gate.run(chat, lambda: t.send_text(chat, text))
        self._msgs.append(_Sent(str(mid), text, start, end, frozen))
        return str(mid)

    async def _edit(self, idx: int, text: str, start: int, end: int) -> bool:
        """Edit message ``idx``; False (and editing disabled) if the platform refuses for good."""
        m = self._msgs[idx]
        t, chat, mid = self.transport, self.chat, m.id
        try:
            await self.gate.run(
                chat, lambda: t.edit_text(chat, mid, text), coalesce_key=f"edit:{mid}"
            )
        except MessageNotModified:
            pass
        except (EditFailed, FormattingRejected):
            log.info("message %s in %s can no longer be edited", mid, chat)
            self._edits_ok = False
            self._broken = idx
            return False
        m.shown, m.start, m.end = text, start, end
        return True

    # -- final state ---------------------------------------------------------------
    async def _reconcile(self, final_text: str) -> list[str]:
        t = self.transport
        chunks = split_chunks(final_text, t.limit, measure=t.measure)
        if self._edits_ok:
            for idx, m in enumerate(self._msgs):
                if idx < len(chunks):
                    c = chunks[idx]
                    want, start, end = c.text, c.start, c.end
                else:
                    want, start, end = SURPLUS_TEXT, len(final_text), len(final_text)
                if m.shown != want:
                    if not await self._edit(idx, want, start, end):
                        break
                else:
                    m.start, m.end = start, end
                m.frozen = True
        if self._edits_ok:
            for c in chunks[len(self._msgs) :]:
                await self._send(c.text, c.start, c.end, frozen=True)
            return self.message_ids
        # Edits failed for good: continue after what the stuck message shows, as new messages.
        k = self._broken if self._broken is not None else len(self._msgs) - 1
        rest = self._resume_point(final_text, k)
        for c in split_chunks(final_text, t.limit, measure=t.measure, start=rest):
            await self._send(c.text, c.start, c.end, frozen=True)
        return self.message_ids

    def _resume_point(self, final_text: str, k: int) -> int:
        """Where the new messages start once message ``k`` can no longer change."""
        if k < 0:
            return 0
        m = self._msgs[k]
        shown_body = self._body_of(m)
        core = shown_body.rstrip() if shown_body else ""
        if core and final_text.startswith(core, m.start):
            return m.start + len(core)
        return self._msgs[k - 1].end if k > 0 else 0

    def _body_of(self, m: _Sent) -> str | None:
        """The answer text a message represents (its text without fence prefix or cursor)."""
        text = m.shown
        if self.cursor and text.endswith(self.cursor):
            text = text[: -len(self.cursor)]
        body = self._text[m.start : m.end]
        return body if body and body in text else None


class StreamingTurn:
    """A ``TurnDelivery`` for platforms that can edit: streamed answer plus tool progress.

    Adapters return one from ``begin_turn``; it wires the runner's callbacks to a
    :class:`StreamConsumer` and a ``ToolProgressMessage`` that share the chat's gate.
    """

    def __init__(
        self,
        transport: MessageTransport,
        chat: str,
        gate: RateGate,
        *,
        tool_progress: ToolProgressMode = "new",
        first_send_chars: int = 40,
        edit_interval: float = 1.0,
        cursor: str = " ▌",
    ) -> None:

        self.answer = StreamConsumer(
            transport,
            chat,
            gate,
            first_send_chars=first_send_chars,
            edit_interval=edit_interval,
            cursor=cursor,
        )
        self.progress = ToolProgressMessage(transport, chat, gate, tool_progress)

    def on_delta(self, text: str) -> None:
        self.answer.feed(text)

    def on_tool_started(self, name: str, preview: str) -> None:
        self.progress.on_tool_started(name, preview)

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        self.progress.on_tool_finished(name, ok, duration, summary)

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        """Deliver the final answer (with a note if it was interrupted or failed)."""
        body = text
        if error:
            body = f"{text}\n\n⚠ {error}" if text else f"⚠ {error}"
        elif interrupted:
            body = f"{text}\n\n(interrupted)" if text else "(interrupted)"
        await self.progress.close()
        await self.answer.finish(body)
