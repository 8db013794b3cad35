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
  edits where a message differs, sends for the chunks not shown yet.

When the platform refuses to edit a message (too old, not ours, deleted by a moderator), that
message is given up: if it still exists it gets one last edit that ends it cleanly (no cursor,
cut back to the start of the paragraph, sentence or word it stopped in); if it was deleted,
its text is sent again. The answer then goes on in new messages from that clean boundary, so
nothing is lost and nothing repeated. If even the last edit is refused, the platform takes no
edits at all: streaming stops and the rest of the answer is sent at the end, from the clean
boundary (the stuck message keeps what it showed; that is all the platform allows).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hermes_gateway.delivery.chunking import clean_end, split_chunks, split_stream, truncate
from hermes_gateway.delivery.errors import (
    DeliveryError,
    EditFailed,
    FormattingRejected,
    GateClosed,
    MessageGone,
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

MAX_GIVE_UPS = 4
"""Messages one answer may give up (deleted, frozen) and still stream on in new ones; past
that (a moderator deleting every message) the rest is sent once, at the end."""


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
        self._live = 0
        """Index of the first message that still carries the answer (the ones before it
        were given up: finished or deleted, never edited again)."""
        self._base = 0
        """Where in the text the live messages start (a clean boundary)."""
        self._given_up = 0
        self._edits_ok = True
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
        frozen, tail = split_stream(text, t.limit, measure=t.measure, start=self._base)
        acted = False
        for i, chunk in enumerate(frozen):
            idx = self._live + i
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
        idx = self._live + len(frozen)
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
        except (EditFailed, FormattingRejected) as exc:
            await self._give_up(idx, exc)
            return False
        m.shown, m.start, m.end = text, start, end
        return True

    async def _give_up(self, idx: int, exc: DeliveryError) -> None:
        """Message ``idx`` takes no more edits: end it cleanly, go on after it in new ones."""
        m = self._msgs[idx]
        m.frozen = True
        self._live = idx + 1
        self._given_up += 1
        if isinstance(exc, MessageGone):
            log.info("message %s in %s was deleted; sending its text again", m.id, self.chat)
            self._base = m.start
        else:
            log.info("message %s in %s can no longer be edited (%s)", m.id, self.chat, exc)
            self._base = await self._seal(m)
        if self._given_up >= MAX_GIVE_UPS:
            self._edits_ok = False
        self._wake.set()  # the rest must reach the chat even if no more text arrives

    async def _seal(self, m: _Sent) -> int:
        """One last edit that ends ``m`` at a clean boundary; return where the rest starts."""
        t, chat, mid = self.transport, self.chat, m.id
        piece = clean_end(
            self._text, m.start, m.end, t.limit, measure=t.measure, finished=self._done
        )
        try:
            await self.gate.run(chat, lambda: t.edit_text(chat, mid, piece.text))
        except MessageNotModified:
            pass
        except MessageGone:
            log.info("message %s in %s was deleted; sending its text again", mid, chat)
            return m.start
        except (EditFailed, FormattingRejected):
            # Not even this edit: the platform takes none. The message keeps what it shows;
            # the rest goes out once, at the end, starting at the clean boundary.
            log.info("message %s in %s stays as it is; no more streaming edits", mid, chat)
            self._edits_ok = False
        else:
            m.shown = piece.text
        m.end = piece.end
        return piece.end

    # -- final state ---------------------------------------------------------------
    async def _reconcile(self, final_text: str) -> list[str]:
        t = self.transport
        self._adopt(final_text)
        while True:
            chunks = split_chunks(self._text, t.limit, measure=t.measure, start=self._base)
            live = self._msgs[self._live :]
            restart = False
            for i, m in enumerate(live):
                idx = self._live + i
                if i >= len(chunks):
                    await self._surplus(m)
                elif m.shown != chunks[i].text:
                    if not await self._edit(idx, chunks[i].text, chunks[i].start, chunks[i].end):
                        restart = True  # given up: the rest is laid out again after it
                        break
                else:
                    m.start, m.end = chunks[i].start, chunks[i].end
                m.frozen = True
            if restart:
                continue
            for c in chunks[len(live) :]:
                await self._send(c.text, c.start, c.end, frozen=True)
            return self.message_ids

    def _adopt(self, final_text: str) -> None:
        """Measure everything against the final text from now on.

        The final text normally extends what was streamed (maybe with leading whitespace
        the stream dropped); the given-up messages showed the part before ``_base``, so the
        live spans shift by that whitespace. If the final text tells another story, the
        given-up messages cannot change and the rest follows from the same offset.
        """
        head = self._text[: self._base]
        shift = 0
        if not final_text.startswith(head):
            lead = len(final_text) - len(final_text.lstrip())
            if final_text.startswith(head, lead):
                shift = lead
        for m in self._msgs[self._live :]:
            m.start, m.end = m.start + shift, m.end + shift
        self._base = min(self._base + shift, len(final_text))
        self._text = final_text

    async def _surplus(self, m: _Sent) -> None:
        """A message the final answer does not need any more: a mark, best effort."""
        if m.shown == SURPLUS_TEXT:
            return
        t, chat, mid = self.transport, self.chat, m.id
        try:
            await self.gate.run(chat, lambda: t.edit_text(chat, mid, SURPLUS_TEXT))
        except MessageNotModified:
            pass
        except (EditFailed, FormattingRejected):
            log.info("leftover message %s in %s could not be marked", mid, chat)
            return
        m.shown = SURPLUS_TEXT


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
