"""Typed gateway events and the bus that carries them.

Everything a screen, a log or a hook may want to know is published here as a small frozen
dataclass. The TUI, headless logging and tests subscribe to exactly the same stream.

``publish`` never blocks and never awaits: each subscriber has its own bounded queue, and when
a slow subscriber's queue is full the oldest event is dropped and counted, so the gateway
itself can never be stalled by a reader. A subscriber that sees ``EventsDropped`` knows it
must re-read state from the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayEvent:
    """Base of every event; ``ts`` is wall-clock seconds."""

    ts: float = field(default_factory=time.time)


# --- conversation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(GatewayEvent):
    """A message reached the runner and was stored (or a command was typed)."""

    session_key: str
    session_id: str | None
    platform: str
    text: str
    user_name: str | None = None
    from_operator: bool = False
    is_command: bool = False
    message_id: int | None = None
    """The stored user message (None for commands and messages held for the operator)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStarted(GatewayEvent):
    session_key: str
    session_id: str
    turn_id: int
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDelta(GatewayEvent):
    """A piece of the answer as the model streams it."""

    session_key: str
    turn_id: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolStarted(GatewayEvent):
    session_key: str
    turn_id: int
    call_id: str
    name: str
    preview: str
    arguments: str = ""
    """The call's arguments as the model sent them (clipped), for the transcript."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFinished(GatewayEvent):
    session_key: str
    turn_id: int
    call_id: str
    name: str
    ok: bool
    duration: float
    summary: str
    output: str = ""
    """What the tool returned (clipped), for the transcript."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStep(GatewayEvent):
    """The agent is about to call the model again within a turn (its ``iteration``-th call,
    from 1), after the tools of the previous step ran (Hermes Agent's ``agent:step``)."""

    session_key: str
    turn_id: int
    iteration: int
    tools: tuple[dict[str, Any], ...] = ()
    """The previous step's tool calls: ``{"name", "arguments", "result"}`` each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnFinished(GatewayEvent):
    """The answer is complete (or was interrupted, or failed with ``error``)."""

    session_key: str
    session_id: str
    turn_id: int
    text: str
    interrupted: bool = False
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration: float = 0.0
    context_tokens: int = 0
    """The session's context as the next turn will send it (0: unknown)."""
    context_length: int = 0
    """The model's context window in tokens (0: unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextCompressed(GatewayEvent):
    """Older turns of a session were folded into a summary (or that failed, history kept)."""

    session_key: str
    session_id: str
    tokens_before: int
    tokens_after: int
    context_length: int
    messages: int = 0
    """How many stored messages the summary stands for."""
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandReplied(GatewayEvent):
    """A slash command's result, as sent back to the chat it came from."""

    session_key: str
    command: str
    text: str
    ok: bool = True
    action: str | None = None
    invocation: str = ""
    """What was typed (``/title Trip plans``), shown above the reply."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(GatewayEvent):
    """Something a person should see that is not part of the transcript (retries, errors)."""

    text: str
    level: Literal["info", "warning", "error"] = "info"
    session_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptRewound(GatewayEvent):
    """``/undo`` or ``/retry`` removed the messages from ``from_message_id`` on (and the notes
    written since): screens drop what they show from that message to the end."""

    session_key: str
    session_id: str
    from_message_id: int


# --- sessions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionChanged(GatewayEvent):
    """A session was created, reset, resumed, renamed or got a new message.

    ``loaded``: a stored session was taken into memory (its chat's first message after a
    restart or an eviction); which session is current did not change, so a screen showing it
    has nothing to reload. ``resumed``: an earlier session became the chat's current one.
    """

    session_key: str
    session_id: str
    reason: Literal["started", "reset", "resumed", "loaded", "titled", "updated"]
    title: str | None = None
    platform: str = ""
    display_name: str | None = None
    paused: bool = False
    """The operator answers this chat by hand; the agent stays quiet."""
    model: str = ""
    expired: str | None = None
    """With ``reset``: the session expired under its reset policy (``idle`` or ``daily``)."""
    previous_id: str | None = None
    """With ``reset``: the session that ended (kept in the store, searchable)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDropped(GatewayEvent):
    """An inbound message the runner deliberately did not act on, and why.

    Published so that "nothing happened" is observable: tests wait for it instead of
    sleeping, and the control room can count what it ignored.
    """

    session_key: str
    platform: str
    reason: Literal["not_mentioned", "empty", "unauthorized", "duplicate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessDenied(GatewayEvent):
    """The access policy refused a sender (after any pairing reply was sent)."""

    session_key: str
    platform: str
    user: str
    """A salted hash of the user id: enough to correlate, never the id itself."""


# --- platforms and health -------------------------------------------------------------------

PlatformState = Literal["starting", "connected", "reconnecting", "failed", "stopped", "paused"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformStatus(GatewayEvent):
    platform: str
    state: PlatformState
    detail: str = ""
    retry_in: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformCounters(GatewayEvent):
    """A platform's message counters changed (published on change, not polled)."""

    platform: str
    received: int = 0
    sent: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopLag(GatewayEvent):
    """The event loop was blocked for ``lag`` seconds (reported above a threshold)."""

    lag: float


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsDropped(GatewayEvent):
    """This subscriber fell behind and ``count`` older events were discarded."""

    count: int


# --- the bus --------------------------------------------------------------------------------


class Subscription:
    """One reader's bounded view of the bus; iterate it with ``async for``."""

    def __init__(
        self,
        bus: EventBus,
        maxsize: int,
        predicate: Callable[[GatewayEvent], bool] | None,
        name: str,
    ) -> None:
        self._bus = bus
        self._queue: deque[GatewayEvent] = deque()
        self._maxsize = maxsize
        self._predicate = predicate
        self._waiter: asyncio.Future[None] | None = None
        self._pending_drops = 0
        self.dropped = 0
        self.name = name
        self.closed = False

    def _offer(self, event: GatewayEvent) -> None:
        if self._predicate is not None and not self._predicate(event):
            return
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
            self._pending_drops += 1
        self._queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pending(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> GatewayEvent | None:
        if self._pending_drops:
            count, self._pending_drops = self._pending_drops, 0
            return EventsDropped(count=count)
        return self._queue.popleft() if self._queue else None

    async def get(self) -> GatewayEvent:
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[GatewayEvent]:
        return self

    async def __anext__(self) -> GatewayEvent:
        return await self.get()

    def close(self) -> None:
        self.closed = True
        self._bus._remove(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class EventBus:
    """Fan-out of gateway events to independent, bounded subscribers."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._listeners: list[Callable[[GatewayEvent], Any]] = []
        self.published = 0

    def subscribe(
        self,
        *,
        maxsize: int = 10_000,
        predicate: Callable[[GatewayEvent], bool] | None = None,
        name: str = "subscriber",
    ) -> Subscription:
        sub = Subscription(self, maxsize, predicate, name)
        self._subs.append(sub)
        return sub

    def add_listener(self, callback: Callable[[GatewayEvent], Any]) -> Callable[[], None]:
        """Call ``callback`` synchronously for every event (must be cheap and never raise).

        For in-process observers that only count or log; anything slower subscribes instead.
        Returns a function that removes the listener.
        """
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, event: GatewayEvent) -> None:
        self.published += 1
        for sub in self._subs:
            sub._offer(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken observer must not break the gateway
                log.exception("event listener failed on %s", type(event).__name__)
