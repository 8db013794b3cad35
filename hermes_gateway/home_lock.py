"""One gateway per HERMES_HOME: an exclusive ``flock`` on ``HERMES_HOME/gateway.pid``.

Two gateways on one home both poll Telegram and answer everything twice, so the second is
refused. The lock is the kernel's (``fcntl.flock``), held for the life of the process: it goes
away with the process however it ends (even ``kill -9``), so a file left behind by a dead
gateway is simply taken over. The file holds the holder's PID for the refusal message (and for
Hermes Agent users, who know ``gateway.pid``).

The file is removed on a clean release. Because another process may have opened the old file
just before, whoever gets the lock checks that the path still names the file it locked, and
starts over if not; without that check two processes could each hold a lock on a different
file under the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

PID_FILENAME = "gateway.pid"


class HomeLockedError(RuntimeError):
    """Another process holds the home; ``pid`` is its PID (None if it had not written it yet)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path, self.pid = path, pid
        who = f"PID {pid}" if pid is not None else "PID unknown"
        super().__init__(
            f"{path.parent} is in use by another Hermes gateway ({who}); stop it first, "
            "or set HERMES_HOME to another folder"
        )


class HomeLock:
    """The held lock; :meth:`release` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, home: Path) -> HomeLock:
        """Lock ``home`` for this process and write our PID, or raise HomeLockedError.

        Raises:
            HomeLockedError: Another live process holds the lock.
            OSError: The file cannot be created or written (a read-only home, ...).
        """
        path = home / PID_FILENAME
        while True:
            # os.open's descriptors are not inherited across exec: a tool's subprocess (or a
            # daemon it starts) never keeps the home locked after we are gone.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise HomeLockedError(path, pid) from None
            except BaseException:
                os.close(fd)
                raise
            if _same_file(path, fd):
                break
            os.close(fd)  # the holder released and removed it meanwhile: lock the new one
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(self.path, fd):
                with contextlib.suppress(OSError):
                    self.path.unlink()
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> HomeLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
