"""Crash safety of the session store: SIGKILL right after acknowledged writes loses nothing.

A real child process (store_crash_writer.py) appends turns in a loop and prints each id only
after ``append_messages`` returned. The test kills it with SIGKILL mid-stream, twice (the
second run recovers the hot WAL the first left behind, then is killed too), and checks every
acknowledged id is in the database and the file passes SQLite's integrity checks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hermes_gateway.store import SessionStore

WRITER = Path(__file__).with_name("store_crash_writer.py")


def _run_and_kill(db: Path, acks_before_kill: int) -> tuple[str, list[int]]:
    """Start the writer, SIGKILL it after ``acks_before_kill`` acks, return (session, acked ids)."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("READY "), first + (proc.stderr.read() if proc.stderr else "")
        session_id = first.split()[1]
        lines = 0
        while lines < acks_before_kill:
            line = proc.stdout.readline()
            assert line.endswith("\n"), "writer died: " + (
                proc.stderr.read() if proc.stderr else ""
            )
            acked += [int(x) for x in line.split()]
            lines += 1
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no close, no checkpoint
        assert proc.wait(timeout=10) == -signal.SIGKILL
        # Lines printed before the kill that we had not read yet were acknowledged too; a
        # partial last line (no newline) was not.
        for line in proc.stdout.read().splitlines(keepends=True):
            if line.endswith("\n"):
                acked += [int(x) for x in line.split()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    return session_id, acked


async def _verify(db: Path, session_id: str, acked: list[int]) -> None:
    store = await SessionStore.open(db)
    try:
        stored = {m.id for m in await store.get_messages(session_id)}
        missing = sorted(set(acked) - stored)
        assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:10]}"
        # Totals were updated in the same transactions as the messages.
        prompt, completion = await store.usage_totals(session_id)
        assert prompt == completion == len(stored) // 2
        assert len(await store.search("question")) > 0
    finally:
        await store.close()


@pytest.mark.slow
def test_acknowledged_messages_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "hermes_tui.db"
    acked: list[int] = []
    sessions: set[str] = set()
    for acks_before_kill in (120, 77):
        session_id, ids = _run_and_kill(db, acks_before_kill)
        sessions.add(session_id)
        acked += ids
        # The killed process left its WAL behind: reopening must recover from it.
        assert Path(f"{db}-wal").exists()
    assert len(sessions) == 1  # the second run found the first run's active session
    assert len(acked) >= 2 * (120 + 77)

    asyncio.run(_verify(db, sessions.pop(), acked))

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    conn.close()
