"""Group commit on the store's thread: transactions queued together share one COMMIT, yet
each fails alone and none is reported stored before the COMMIT (real sqlite3, real thread)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from hermes_gateway.store.executor import SqliteWorker


def _insert(conn: sqlite3.Connection, n: int) -> int:
    conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
    if n == 3:
        raise ValueError("three is refused")
    return n * 10


def _rows(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT n FROM t ORDER BY n")]


async def _queued_behind_a_held_worker(worker: SqliteWorker, calls: list) -> list:
    """Run ``calls`` (coroutines) while the worker is busy, so all of them are queued when
    it comes back: the batch is deterministic, not a matter of timing."""
    release = threading.Event()
    held = asyncio.ensure_future(worker.run(lambda conn: release.wait(10)))
    tasks = [asyncio.ensure_future(c) for c in calls]
    await asyncio.sleep(0)  # each task queues its job before its first suspension
    release.set()
    await held
    return await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def worker(tmp_path: Path):
    worker = await SqliteWorker.open(tmp_path / "t.db", timeout=1.0)
    await worker.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    yield worker
    await worker.close()


async def test_queued_transactions_share_one_commit_and_fail_alone(worker: SqliteWorker):
    results = await _queued_behind_a_held_worker(
        worker, [worker.run_tx(_insert, n) for n in range(1, 6)]
    )
    assert results[:2] == [10, 20] and results[3:] == [40, 50]
    assert isinstance(results[2], ValueError)
    assert await worker.run(_rows) == [1, 2, 4, 5], "only the failed call's insert is undone"
    assert worker.commits == 1
    assert not worker.in_transaction


async def test_a_call_alone_is_its_own_transaction(worker: SqliteWorker):
    assert await worker.run_tx(_insert, 1) == 10
    with pytest.raises(ValueError):
        await worker.run_tx(_insert, 3)
    assert await worker.run(_rows) == [1]
    assert worker.commits == 1 and not worker.in_transaction


async def test_a_failed_commit_fails_every_call_of_the_batch(worker: SqliteWorker, tmp_path):
    # A deferred foreign key is checked at COMMIT: the batch's COMMIT fails, so no call may
    # be told its writes are stored, not even those that did nothing wrong themselves.
    await worker.execute("PRAGMA foreign_keys = ON")
    await worker.execute(
        "CREATE TABLE child (p INTEGER REFERENCES t(n) DEFERRABLE INITIALLY DEFERRED)"
    )

    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO child (p) VALUES (999)")

    results = await _queued_behind_a_held_worker(
        worker, [worker.run_tx(_insert, 1), worker.run_tx(orphan), worker.run_tx(_insert, 2)]
    )
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert await worker.run(_rows) == []
    assert worker.commits == 0 and not worker.in_transaction
    assert await worker.run_tx(_insert, 4) == 40, "the next transaction works"


async def test_plain_jobs_keep_their_place_between_batches(worker: SqliteWorker):
    seen: list[list[int]] = []

    def look(conn: sqlite3.Connection) -> None:
        seen.append(_rows(conn))

    results = await _queued_behind_a_held_worker(
        worker,
        [worker.run_tx(_insert, 1), worker.run(look), worker.run_tx(_insert, 2), worker.run(look)],
    )
    assert results == [10, None, 20, None]
    assert seen == [[1], [1, 2]]


async def test_a_transaction_queued_before_close_is_stored_and_close_returns(
    tmp_path: Path,
) -> None:
    """close() marks the worker closed before its own job runs: a transaction queued ahead of
    it must still run on the open connection (it used to kill the thread, and every caller
    after it, the gateway's stop included, waited forever)."""
    worker = await SqliteWorker.open(tmp_path / "c.db", timeout=5)
    await worker.run(lambda conn: conn.execute("CREATE TABLE t (n INTEGER)"))
    release = threading.Event()
    held = asyncio.ensure_future(worker.run(lambda conn: release.wait(10)))
    await asyncio.sleep(0)
    tx = asyncio.ensure_future(worker.run_tx(_insert, 1))
    closing = asyncio.ensure_future(worker.close())
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(asyncio.gather(held, closing), 5)
    assert await asyncio.wait_for(tx, 5) == 10
    check = sqlite3.connect(tmp_path / "c.db")
    assert [r[0] for r in check.execute("SELECT n FROM t")] == [1]
    check.close()
