"""Fire-and-forget tasks that are kept alive and whose failures are logged.

Why: the event loop keeps only a weak reference to a task, so ``asyncio.create_task(x)``
whose result is dropped can be garbage-collected mid-run, and an exception in it is reported
only as "Task exception was never retrieved", if at all. A :class:`TaskSet` holds each task
until it is done, logs its exception with the task's name, and can cancel what is left on
shutdown.

Usage::

    self._background = TaskSet("telegram")
    self._background.spawn(self._stop_updater(app), name="telegram-stop-updater")
    ...
    await self._background.cancel_all()  # in stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class TaskSet:
    """Strong references to background tasks until they finish; failures go to the log."""

    def __init__(self, owner: str = "background") -> None:
        """``owner`` names the component in log lines (e.g. ``"telegram"``)."""
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Start ``coro`` as a task on the running loop and keep it until it is done."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error(
                "%s: background task %s failed",
                self.owner,
                task.get_name(),
                exc_info=(type(exc), exc, exc.__traceback__),
            )

    def names(self) -> list[str]:
        """The names of the tasks still running (for status lines and tests)."""
        return [task.get_name() for task in self._tasks]

    def __len__(self) -> int:
        """How many tasks are still running."""
        return len(self._tasks)

    async def cancel_all(self, timeout: float | None = None) -> None:
        """Cancel the tasks still running and wait until they have finished (at most
        ``timeout`` seconds: an adapter's stop must end even if a task ignores it)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if timeout is not None:
            await self.drain(timeout)
            return
        # return_exceptions: their failures are logged by _done; our own cancellation still
        # propagates.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, timeout: float) -> None:
        """Let the tasks still running finish, for at most ``timeout`` seconds (a webhook's
        message being stored when its platform stops)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


__all__ = ["TaskSet"]
