"""One hook call, bounded in time and kept off the gateway's event loop.

Sync handlers run in a daemon thread of their own, async ones on one event loop of the hooks
(a daemon thread): a handler that blocks (``time.sleep``, a slow HTTP call without a timeout,
even inside an ``async def``) stalls only itself, never the gateway's loop. Daemon threads, so
a handler stuck forever cannot hold the process at exit either.

A call that runs past its timeout is abandoned (an async one is cancelled; a thread cannot be)
and reported. Until that stuck call ends, further calls of the same hook are skipped and
reported, so a hook that hangs every time costs one thread, not one per event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

__all__ = ["CallOutcome", "HookCalls", "in_daemon_thread"]

T = TypeVar("T")

GRACE = 0.5
"""Seconds past an async call's own timeout before the caller stops waiting for the hooks'
loop (which a blocking ``async def`` may be holding)."""


def in_daemon_thread(fn: Callable[..., T], *args: Any, name: str) -> concurrent.futures.Future[T]:
    """Run ``fn(*args)`` in a new daemon thread; its result or exception in the future."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # the handler's failure, reported by the caller
            future.set_exception(exc)
        except BaseException as exc:  # sys.exit() in a hook must not reach the gateway's loop
            future.set_exception(_exited(exc))

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class HookExited(Exception):
    """A hook called ``sys.exit()`` (or raised another ``BaseException``): a failure of that
    hook, never an exit of the gateway."""


def _exited(exc: BaseException) -> HookExited:
    failure = HookExited(f"{type(exc).__name__}: {exc}".rstrip(": "))
    failure.__traceback__ = exc.__traceback__
    return failure


async def _guarded(coro: Any, timeout: float) -> Any:
    """Await a handler's coroutine on the hooks' loop within ``timeout``."""
    return await asyncio.wait_for(_contained(coro), timeout)


async def _contained(coro: Any) -> Any:
    """The coroutine, with ``SystemExit`` & co. turned into a failure inside the task that
    runs it (a task re-raises those into its loop, which would stop the hooks' loop)."""
    try:
        return await coro
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:
        raise _exited(exc) from None


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How one call went: its return value, or why it failed."""

    result: Any = None
    kind: Literal["ok", "raised", "timeout", "skipped"] = "ok"
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def describe(exc: BaseException) -> str:
    """``ValueError: bad input (handler.py, line 12)``: the failure and where in the hook."""
    text = str(exc) if isinstance(exc, HookExited) else f"{type(exc).__name__}: {exc}".rstrip(": ")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".py")]
    own = [f for f in frames if "hermes_gateway" not in f.filename]
    if own:
        last = own[-1]
        text += f" ({last.filename.rsplit('/', 1)[-1]}, line {last.lineno})"
    return text


class _Call:
    """One call's state, shared by the gateway's loop and the thread running it."""

    __slots__ = ("ended", "stuck")

    def __init__(self) -> None:
        self.ended = False
        self.stuck = False


class HookCalls:
    """Runs hook handlers with timeouts; owns the hooks' event loop thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stuck: dict[str, int] = {}
        self._lock = threading.Lock()

    def _hooks_loop(self) -> asyncio.AbstractEventLoop:
        """The loop async handlers run on (started on first use)."""
        if self._loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="hooks-loop", daemon=True).start()
            self._loop = loop
        return self._loop

    def close(self) -> None:
        """Stop the hooks' loop; calls still on it are abandoned (daemon thread)."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def stuck(self, hook: str) -> bool:
        """A call of ``hook`` ran past its timeout and has not ended yet."""
        with self._lock:
            return self._stuck.get(hook, 0) > 0

    async def call(
        self,
        hook: str,
        fn: Callable[..., Any],
        event_type: str,
        context: dict[str, Any],
        timeout: float,
    ) -> CallOutcome:
        """``fn(event_type, context)`` within ``timeout`` seconds, off the gateway's loop."""
        if self.stuck(hook):
            return CallOutcome(kind="skipped", error="skipped: its previous call is still running")
        state = _Call()
        wait = timeout
        future: concurrent.futures.Future[Any]
        if asyncio.iscoroutinefunction(fn):
            future = asyncio.run_coroutine_threadsafe(
                self._async(hook, state, fn, event_type, context, timeout), self._hooks_loop()
            )
            wait = timeout + GRACE  # its own wait_for fires first unless it blocks the loop
        else:
            future = in_daemon_thread(
                self._sync, hook, state, fn, event_type, context, timeout, name=f"hook:{hook}"
            )
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), wait)
        except TimeoutError:
            with self._lock:
                if not state.ended:
                    state.stuck = True
                    self._stuck[hook] = self._stuck.get(hook, 0) + 1
            return CallOutcome(kind="timeout", error=f"timed out after {timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return CallOutcome(kind="raised", error=describe(exc))
        return CallOutcome(result=result)

    def _ended(self, hook: str, state: _Call) -> None:
        with self._lock:
            state.ended = True
            if state.stuck:
                left = self._stuck.get(hook, 1) - 1
                if left > 0:
                    self._stuck[hook] = left
                else:
                    self._stuck.pop(hook, None)

    async def _async(
        self,
        hook: str,
        state: _Call,
        fn: Callable[..., Any],
        event_type: str,
        context: dict[str, Any],
        timeout: float,
    ) -> Any:
        try:
            return await _guarded(fn(event_type, context), timeout)
        finally:
            self._ended(hook, state)

    def _sync(
        self,
        hook: str,
        state: _Call,
        fn: Callable[..., Any],
        event_type: str,
        context: dict[str, Any],
        timeout: float,
    ) -> Any:
        """A sync handler; a coroutine it returns (Hermes Agent awaits those) runs on the
        hooks' loop."""
        try:
            result = fn(event_type, context)
            if asyncio.iscoroutine(result):
                return asyncio.run_coroutine_threadsafe(
                    _guarded(result, timeout), self._hooks_loop()
                ).result()
            return result
        finally:
            self._ended(hook, state)
