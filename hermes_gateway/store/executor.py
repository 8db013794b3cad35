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

Group commit (:meth:`SqliteWorker.run_tx`): transaction functions found queued one after
another run in ONE transaction, each inside its own SAVEPOINT, so a function that raises
undoes only its own statements, and all their results are handed back after the one COMMIT
(nobody hears "stored" before it is). Under load (32 API requests in flight) that is a
fraction of the commits, WAL writes and file locks, and one wake-up of the event loop per
batch instead of one per call; a call alone is a plain BEGIN ... COMMIT as before.
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

#: What the worker thread reads: ``(loop, future, fn, args, in_transaction)`` or None to stop.
_Job = tuple[
    asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], bool
]
#: A job's outcome: ``(future, result, exception)``.
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]
#: Transaction functions run in one group commit at most.
MAX_BATCH = 64
_NO_JOB: Any = object()


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """Hand a result to the awaiting coroutine (on the loop), unless it gave up (cancelled)."""
    if fut.cancelled():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _settle_all(outcomes: list[_Outcome]) -> None:
    for fut, result, exc in outcomes:
        _settle(fut, result, exc)


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
        self.commits = 0
        """Transactions committed by :meth:`run_tx` (a group commit counts once)."""
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
        carried: _Job | None = _NO_JOB
        while True:
            job = self._jobs.get() if carried is _NO_JOB else carried
            carried = _NO_JOB
            if job is None:
                return
            if not job[4]:
                _, fut, fn, args, _ = job
                result: Any = None
                error: BaseException | None = None
                try:
                    result = fn(*args)
                except BaseException as exc:  # handed to the caller, whatever it is
                    error = exc
                _hand_back(job[0], [(fut, result, error)])
                del job, fut, result, error
                continue
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    queued = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if queued is None or not queued[4]:
                    carried = queued  # runs after the batch, keeping the order
                    break
                batch.append(queued)
            try:
                outcomes = self._group_commit(batch)
            except BaseException as exc:  # never let the thread die with callers waiting
                outcomes = [(queued[1], None, exc) for queued in batch]
            by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            for queued, outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(queued[0], []).append(outcome)
            for loop, settled in by_loop.items():
                _hand_back(loop, settled)
            del job, batch, outcomes, by_loop

    def _group_commit(self, batch: list[_Job]) -> list[_Outcome]:
        """BEGIN IMMEDIATE; each function (in a SAVEPOINT when there are several); COMMIT.

        A function that raises is rolled back alone and gets its exception; when the
        transaction itself fails (BEGIN waited out the busy timeout, COMMIT hit a full disk,
        SQLite rolled everything back after an I/O error) nothing of the batch is stored and
        every function gets that exception. IMMEDIATE takes the write lock up front (waiting
        up to the busy timeout), so a transaction never has to upgrade a read lock later,
        which SQLite answers with an instant "database is locked" instead of waiting.
        """
        # Not ``self.raw``: close() marks the worker closed on the loop's thread before its
        # own job (queued after this batch) closes the connection, which is open until then.
        conn = self._conn
        futures = [job[1] for job in batch]
        if conn is None:
            closed = sqlite3.ProgrammingError("Cannot operate on a closed database.")
            return [(fut, None, closed) for fut in futures]
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            return [(fut, None, exc) for fut in futures]
        if len(batch) == 1:
            fn, args = batch[0][2], batch[0][3]
            try:
                result = fn(*args)
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn)
                return [(futures[0], None, exc)]
            self.commits += 1
            return [(futures[0], result, None)]
        outcomes: list[_Outcome] = []
        for fut, (_, _, fn, args, _) in zip(futures, batch, strict=True):
            try:
                conn.execute("SAVEPOINT hermes_job")
            except BaseException as exc:
                _rollback(conn)
                return [(f, None, exc) for f in futures]
            try:
                result = fn(*args)
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK TO hermes_job")
                    conn.execute("RELEASE hermes_job")
                except BaseException:
                    # The error ended the whole transaction (an I/O error, a full disk):
                    # nothing of the batch is stored, and this is why.
                    _rollback(conn)
                    return [(f, None, exc) for f in futures]
                outcomes.append((fut, None, exc))
                continue
            try:
                conn.execute("RELEASE hermes_job")
            except BaseException as exc:
                _rollback(conn)
                return [(f, None, exc) for f in futures]
            outcomes.append((fut, result, None))
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            return [(f, None, exc) for f in futures]
        self.commits += 1
        return outcomes

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, fut, fn, args, False))
        return fut

    async def run_tx(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` inside a transaction (BEGIN IMMEDIATE ... COMMIT, rolled back
        if it raises), maybe shared with the transaction functions queued with it (see the
        module's docstring). It returns only after the COMMIT that stored its writes."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, fut, fn, (self.raw, *args), True))
        return await fut

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


def _hand_back(loop: asyncio.AbstractEventLoop, outcomes: list[_Outcome]) -> None:
    try:
        loop.call_soon_threadsafe(_settle_all, outcomes)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # already rolled back by SQLite itself


def _execute(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    conn.execute(sql, params)


def _fetchall(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, params).fetchall()
