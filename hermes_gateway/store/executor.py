"""One dedicated thread that owns one ``sqlite3`` connection, with an asyncio face.

Why our own and not aiosqlite: the store's latency is dominated by thread hops, so every store
call runs as ONE plain function on the connection's thread (``BEGIN IMMEDIATE``, statements,
``COMMIT``). aiosqlite has no public API for "run this function in your thread"; using its
private ``_execute`` / ``_conn`` tied us to its internals. This is the same mechanism (a FIFO
queue read by one thread, results handed back with ``call_soon_threadsafe``) in ~100 lines
of stdlib, so the event loop never blocks on SQLite and nothing depends on private API.

Calls run strictly in submission order. A cancelled caller does not stop a function already
queued: it still runs (so a transaction function always reaches COMMIT or ROLLBACK), only its
result is dropped.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: What the worker thread reads: ``(loop, future, fn, args)`` or None to stop.
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """Hand a result to the awaiting coroutine (on the loop), unless it gave up (cancelled)."""
    if fut.cancelled():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


class SqliteWorker:
    """A ``sqlite3`` connection living on its own thread; ``await worker.run(fn, *args)``.

    Open with :meth:`open`; ``fn(conn, *args)`` then runs on the thread with the connection.
    The connection is in autocommit mode (``isolation_level=None``): callers say BEGIN/COMMIT.
    ``execute`` / ``execute_fetchall`` are statement-at-a-time conveniences for feature code.
    """

    def __init__(self, name: str = "sqlite") -> None:
        """Use :meth:`open`; this only creates the (not yet started) thread."""
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        # Daemon: a store someone forgot to close must not keep the interpreter alive; an
        # unfinished transaction is rolled back by SQLite itself on the next open.
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    @classmethod
    async def open(cls, path: str | Path, *, timeout: float, name: str = "sqlite") -> SqliteWorker:
        """Start the thread and connect on it (``timeout`` is the busy timeout, in seconds)."""
        worker = cls(name)
        worker._thread.start()
        try:
            await worker._submit(worker._connect, str(path), timeout)
        except BaseException:
            worker._closed = True
            worker._jobs.put(None)
            raise
        return worker

    def _connect(self, path: str, timeout: float) -> None:
        self._conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)

    def _work(self) -> None:
        """The thread: run jobs in order until told to stop."""
        while (job := self._jobs.get()) is not None:
            loop, fut, fn, args = job
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the caller, whatever it is
                error = exc
            try:
                loop.call_soon_threadsafe(_settle, fut, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass
            del job, fut, result, error

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, fut, fn, args))
        return fut

    @property
    def raw(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection; only ever touch it from a function given to :meth:`run`."""
        if self._conn is None or self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on the connection's thread, after everything queued before it."""
        return await self._submit(fn, self.raw, *args)

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Run one statement (for feature code; the store itself uses :meth:`run`)."""
        await self.run(_execute, sql, params)

    async def execute_fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run one statement and return all its rows."""
        return await self.run(_fetchall, sql, params)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection (a plain attribute read)."""
        return self.raw.in_transaction

    async def close(self) -> None:
        """Close the connection on its thread, then let the thread end (idempotent)."""
        if self._closed:
            return
        conn = self.raw
        self._closed = True
        try:
            await self._submit(conn.close)
        finally:
            self._jobs.put(None)


def _execute(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    conn.execute(sql, params)


def _fetchall(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, params).fetchall()
