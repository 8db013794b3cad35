"""One queue per chat that orders and paces every send and edit.

Platforms limit how fast a bot may write to one chat (Telegram about one message a second
per chat, 30 a second overall; Discord 5 per 5 s per channel) and answer 429 with a
``retry_after`` when we go faster. If streamed edits, tool-progress lines and the final
message each talked to the platform on their own, they would race: an older edit could
land after a newer one, and a 429 on one would not slow the others. So everything a bot
writes to a chat goes through :meth:`RateGate.run`:

* operations for one chat run one at a time, in submission order, at least
  ``per_chat_interval`` apart (start to start); different chats run concurrently, limited
  only by the optional global rate;
* :class:`~hermes_gateway.delivery.errors.RetryAfter` pauses the whole chat for the time
  asked and then repeats the *same* operation: the platform refused it, so nothing is sent
  twice; after ``max_retries`` the error reaches the caller;
* a queued operation with the same ``coalesce_key`` as a newer one is replaced by it (edits
  of one message: only the newest text matters) and both callers get its result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hermes_gateway.delivery.errors import GateClosed, RetryAfter

__all__ = ["RateGate"]

log = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_PRUNE_AT = 256
"""Forget idle chats once this many are known (their pacing has long expired)."""


@dataclass(eq=False)
class _Job:
    op: Callable[[], Awaitable[Any]]
    coalesce_key: str | None
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    started: bool = False

    def succeed(self, result: Any) -> None:
        for w in self.waiters:
            if not w.done():
                w.set_result(result)

    def fail(self, exc: BaseException) -> None:
        for w in self.waiters:
            if not w.done():
                w.set_exception(exc)


@dataclass(eq=False)
class _Chat:
    pending: deque[_Job] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    next_at: float = float("-inf")


class RateGate:
    """Per-chat ordered, paced execution of delivery operations.

    Args:
        per_chat_interval: Minimum seconds between the starts of two operations in one chat.
        global_per_second: Optional cap on operation starts per second over all chats.
        max_retries: How many times one operation is repeated after ``RetryAfter``.
        clock: Monotonic clock (injectable for tests).
        sleep: Async sleep matching ``clock`` (injectable for tests).
    """

    def __init__(
        self,
        per_chat_interval: float,
        global_per_second: float | None = None,
        max_retries: int = 5,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_chat_interval = max(0.0, per_chat_interval)
        self._global_interval = 1.0 / global_per_second if global_per_second else 0.0
        self._global_next = float("-inf")
        self.max_retries = max_retries
        self._clock = clock
        self._sleep = sleep
        self._chats: dict[str, _Chat] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def queued(self, chat_key: str) -> int:
        """Operations waiting (not started) for a chat; useful for metrics and tests."""
        chat = self._chats.get(chat_key)
        return len(chat.pending) if chat else 0

    async def run(
        self,
        chat_key: str,
        op: Callable[[], Awaitable[T]],
        *,
        coalesce_key: str | None = None,
    ) -> T:
        """Run ``op`` in ``chat_key``'s queue and return its result (or raise its error).

        Cancelling the caller withdraws an operation that has not started yet.
        """
        if self._closed:
            raise GateClosed("the rate gate is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        chat = self._chats.get(chat_key)
        if chat is None:
            if len(self._chats) >= _PRUNE_AT:
                self._prune()
            chat = self._chats[chat_key] = _Chat()
        job: _Job | None = None
        if coalesce_key is not None:
            for queued in chat.pending:
                if queued.coalesce_key == coalesce_key:
                    queued.op = op  # the newest text wins; the slot keeps its place
                    queued.waiters.append(fut)
                    job = queued
                    break
        if job is None:
            job = _Job(op, coalesce_key, [fut])
            chat.pending.append(job)
        if chat.worker is None:
            chat.worker = loop.create_task(self._work(chat), name=f"rate-gate:{chat_key}")
        try:
            return await fut
        except asyncio.CancelledError:
            if not job.started and fut in job.waiters:
                job.waiters.remove(fut)
                if not job.waiters and job in chat.pending:
                    chat.pending.remove(job)
            raise

    def close(self) -> None:
        """Fail every waiting operation with ``GateClosed`` and cancel the running ones."""
        if self._closed:
            return
        self._closed = True
        for chat in self._chats.values():
            while chat.pending:
                chat.pending.popleft().fail(GateClosed("the rate gate was closed"))
            if chat.worker is not None:
                chat.worker.cancel()

    async def aclose(self) -> None:
        """:meth:`close` and wait until every worker has stopped."""
        self.close()
        workers = [c.worker for c in self._chats.values() if c.worker is not None]
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)

    # -- internals -----------------------------------------------------------------
    def _prune(self) -> None:
        now = self._clock()
        for key in [
            k
            for k, c in self._chats.items()
            if c.worker is None and not c.pending and c.next_at <= now
        ]:
            del self._chats[key]

    async def _work(self, chat: _Chat) -> None:
        try:
            while chat.pending:
                now = self._clock()
                if chat.next_at > now:
                    await self._sleep(chat.next_at - now)
                    continue  # the head may have been withdrawn or coalesced meanwhile
                if self._global_interval:
                    if self._global_next > now:
                        await self._sleep(self._global_next - now)
                        continue
                    self._global_next = now + self._global_interval
                job = chat.pending.popleft()
                job.started = True
                await self._execute(chat, job)
        finally:
            chat.worker = None

    async def _execute(self, chat: _Chat, job: _Job) -> None:
        attempts = 0
        while True:
            chat.next_at = self._clock() + self.per_chat_interval
            try:
                result = await job.op()
            except RetryAfter as exc:
                attempts += 1
                if attempts > self.max_retries:
                    job.fail(exc)
                    return
                log.debug("rate limited, pausing the chat for %.3fs", exc.seconds)
                try:
                    await self._sleep(exc.seconds)
                except asyncio.CancelledError:
                    job.fail(GateClosed("the rate gate was closed"))
                    raise
                continue
            except asyncio.CancelledError:
                job.fail(GateClosed("the rate gate was closed"))
                raise
            except Exception as exc:
                job.fail(exc)
                return
            job.succeed(result)
            return
