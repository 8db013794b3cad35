"""Which hooks an event reaches, and in what order they run.

Matching is Hermes Agent's: a hook listening for ``agent:start`` gets exactly that event, one
listening for ``command:*`` gets every ``command:<name>``; exact matches run first, then the
wildcards, each hook in the order the hooks directory lists them.

Notifications (:meth:`HookDispatcher.notify`) never make the gateway wait: they go into one
bounded queue that a single task works through in order, so ``agent:start`` reaches a hook
before that turn's ``agent:step`` and ``agent:end``, and a slow hook delays only later hook
calls, never a turn. If hooks fall that far behind, the oldest queued events are dropped and
reported. Decisions (:meth:`HookDispatcher.decide`, for ``command:<name>``) are awaited, each
call within its timeout, because their answer changes what the command does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from hermes_gateway.hooks.calls import CallOutcome, HookCalls
from hermes_gateway.hooks.events import HookFailed
from hermes_gateway.hooks.loader import LoadedHook

__all__ = ["HookDispatcher"]

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
"""Hook events waiting for slow hooks before the oldest are dropped."""
DRAIN_SECONDS = 3.0
"""At stop, how long queued events may still take to reach the hooks (e.g. the last
``agent:end``)."""


class HookDispatcher:
    """Runs the loaded hooks for each event; reports every failure through ``report``."""

    def __init__(
        self,
        hooks: list[LoadedHook],
        report: Callable[[HookFailed], None],
        *,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.hooks = hooks
        self.report = report
        self.calls = HookCalls()
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._limit = queue_limit
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0
        self.last_error: dict[str, HookFailed] = {}
        """Each hook's latest failure (what the app lists)."""

    def listening(self, event_type: str) -> list[LoadedHook]:
        """The hooks ``event_type`` reaches: exact matches, then ``<base>:*`` wildcards."""
        exact = [h for h in self.hooks if event_type in h.info.events]
        if ":" not in event_type:
            return exact
        wildcard = event_type.split(":", 1)[0] + ":*"
        return exact + [h for h in self.hooks if wildcard in h.info.events and h not in exact]

    def wants(self, event_type: str) -> bool:
        return bool(self.listening(event_type))

    # --- notifications: in order, never waited for -----------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="hooks")

    async def stop(self, drain: float = DRAIN_SECONDS) -> None:
        """Let queued events reach the hooks for up to ``drain`` seconds, then stop."""
        if self._task is not None and not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), drain)
            except TimeoutError:
                log.warning("stopping with %d hook event(s) not delivered", len(self._queue))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.calls.close()

    def notify(self, event_type: str, context: dict[str, Any]) -> None:
        """Queue ``event_type`` for the hooks that listen for it (returns at once)."""
        if not self.wants(event_type):
            return
        if len(self._queue) >= self._limit:
            dropped, _ = self._queue.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                self._fail(
                    "(hooks)",
                    dropped,
                    CallOutcome(
                        kind="skipped",
                        error=f"{self._dropped} hook event(s) dropped: hooks fell behind",
                    ),
                    kind="dropped",
                )
        self._queue.append((event_type, context))
        self._idle.clear()
        self._wake.set()

    async def idle(self) -> None:
        """Wait until every queued event was handled (tests, shutdown)."""
        await self._idle.wait()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                event_type, context = self._queue.popleft()
                try:
                    await self.run(event_type, context)
                except Exception:  # never let one event end the worker
                    log.exception("running hooks for %s failed", event_type)
            if not self._queue:
                self._idle.set()

    # --- running ---------------------------------------------------------------------------

    async def run(self, event_type: str, context: dict[str, Any]) -> list[Any]:
        """Call every hook listening for ``event_type``, one after another, each within its
        timeout; their non-None results, in order."""
        results = []
        for hook in self.listening(event_type):
            # Each hook gets its own copy: one hook changing the dict cannot surprise another.
            outcome = await self.calls.call(
                hook.info.name, hook.handle, event_type, dict(context), hook.info.timeout
            )
            if not outcome.ok:
                self._fail(hook.info.name, event_type, outcome)
            elif outcome.result is not None:
                results.append(outcome.result)
        return results

    def _fail(
        self, hook: str, event_type: str, outcome: CallOutcome, *, kind: str | None = None
    ) -> None:
        failure = HookFailed(
            hook=hook,
            event=event_type,
            kind=kind or outcome.kind,  # type: ignore[arg-type]
            error=outcome.error,
        )
        self.last_error[hook] = failure
        log.warning("hook %s on %s: %s", hook, event_type, outcome.error)
        self.report(failure)
