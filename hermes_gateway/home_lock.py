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
import json
import os
from pathlib import Path

PID_FILENAME = "gateway.pid"


class HomeLockedError(RuntimeError):
    """Another process holds the home; ``pid`` is its PID (None if it had not written it yet).

    ``foreign``: the holder is Hermes Agent's own gateway, which shares the folder and the
    ``gateway.pid`` name but not our lock (it writes a JSON record there instead).
    """

    def __init__(self, path: Path, pid: int | None, *, foreign: bool = False) -> None:
        self.path, self.pid, self.foreign = path, pid, foreign
        who = f"PID {pid}" if pid is not None else "PID unknown"
        what = "Hermes Agent's gateway" if foreign else "another Hermes gateway"
        super().__init__(
            f"{path.parent} is in use by {what} ({who}); stop it first (or start with "
            "--replace to take over), or set HERMES_HOME to another folder"
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
                foreign = _foreign_holder(fd)
                if foreign is not None:
                    os.close(fd)
                    raise HomeLockedError(path, foreign, foreign=True)
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
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return None
    return parse_pid(text)


def parse_pid(text: str) -> int | None:
    """The PID in a ``gateway.pid``: ours (``"123\\n"``) or Hermes Agent's JSON record."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        record = json.loads(text)
    except ValueError:
        return None
    pid = record.get("pid") if isinstance(record, dict) else None
    return pid if isinstance(pid, int) and pid > 0 else None


def read_pid_file(home: Path) -> int | None:
    """The PID named in ``home/gateway.pid`` (alive or not), or None."""
    try:
        return parse_pid((home / PID_FILENAME).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, already exited, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) said it exists


def _foreign_holder(fd: int) -> int | None:
    """The PID of a live Hermes Agent gateway whose record sits in the file we just locked.

    Our gateways hold the flock, so a file we could lock is either stale or Hermes Agent's
    (which does not flock this file). Its JSON record with a live PID means its gateway runs.
    """
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not text.startswith("{"):
        return None
    pid = parse_pid(text)
    if pid is None or pid == os.getpid() or not pid_alive(pid):
        return None
    return pid


def _same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def holder(home: Path) -> int | None:
    """The PID of the gateway running on ``home`` (ours or Hermes Agent's), or None.

    0 means one runs but has not written its PID yet (it is starting this very moment).

    Looks without taking anything: a shared lock attempt on a read-only descriptor fails
    exactly while a gateway holds the exclusive one, and nothing is written or removed.
    """
    path = home / PID_FILENAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return _foreign_holder(fd)
    finally:
        os.close(fd)
