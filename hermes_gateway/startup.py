"""Claim a HERMES_HOME before a gateway starts on it: checks that each fail with one clear line.

``hermes`` (the TUI) and ``hermes gateway run`` call :func:`claim_home` before anything else
runs, so a home they cannot use ends the command with exit code 2 and one line (the TUI never
opens its full screen) instead of a traceback or a failure found at the first message. The
order matters: the folder must be usable before it can be locked, and only the process that
holds the lock may migrate the database.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import tempfile
import time
from pathlib import Path

from hermes_gateway.home_lock import HomeLock, HomeLockedError
from hermes_gateway.paths import HermesPaths

log = logging.getLogger(__name__)

#: How long ``--replace`` waits for the running gateway to finish its answers and exit before
#: it is killed (its own drain takes at most gateway.drain_timeout, 30 s by default).
REPLACE_TIMEOUT_S = 45.0


class StartupError(RuntimeError):
    """The home cannot be used; the message is the one line to show the user."""


def claim_home(
    paths: HermesPaths, *, replace: bool = False, replace_timeout: float = REPLACE_TIMEOUT_S
) -> HomeLock:
    """Check the home, take its lock, check the logs and the database; return the held lock.

    Args:
        replace: Stop the gateway running on this home (ours or Hermes Agent's) and take over.

    Raises:
        StartupError: Something is wrong; the lock (if it was taken) is released again.
    """
    _require_folder(paths.home, "HERMES_HOME", why="the database and logs live there")
    try:
        lock = take_over(paths.home, replace_timeout) if replace else HomeLock.acquire(paths.home)
    except HomeLockedError as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"cannot lock {paths.home / 'gateway.pid'}: {_reason(exc)}") from None
    try:
        _require_folder(paths.logs_dir, "the logs folder", why="the gateway log is written there")
        _require_appendable(paths.logs_dir / "gateway.log")
        _check_database(paths.database)
    except BaseException:
        lock.release()
        raise
    return lock


def take_over(home: Path, timeout: float = REPLACE_TIMEOUT_S) -> HomeLock:
    """The home's lock, after stopping whoever holds it (SIGTERM; SIGKILL after ``timeout``).

    The holder's lock is the kernel's, so it is free the moment the holder has exited (even as
    a zombie nobody reaped); we wait for exactly that rather than for the PID to vanish.

    Raises:
        HomeLockedError: The holder could not be stopped (not ours to signal, or it survived
            SIGKILL), or a third gateway took the home first.
    """
    try:
        return HomeLock.acquire(home)
    except HomeLockedError as exc:
        held = exc
    deadline = time.monotonic() + 2.0
    while held.pid is None and time.monotonic() < deadline:  # it is writing its PID just now
        time.sleep(0.05)
        try:
            return HomeLock.acquire(home)
        except HomeLockedError as exc:
            held = exc
    if held.pid is None or held.pid == os.getpid():
        raise held
    pid = held.pid
    log.warning("replacing the gateway running on %s (PID %s)", home, pid)
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise held from None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                return HomeLock.acquire(home)
            except HomeLockedError as exc:
                if exc.pid not in (None, pid):
                    raise  # someone else started meanwhile: not ours to stop too
            time.sleep(0.05)
    raise held


def _require_folder(folder: Path, name: str, *, why: str) -> None:
    """``folder`` is (or can be made) a folder we may create files in."""
    if folder.exists() and not folder.is_dir():
        raise StartupError(f"{name} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create {name} {folder}: {_reason(exc)}") from None
    try:
        # A real write, not os.access: access() says yes to root even where writing fails
        # (a read-only mount, a missing capability).
        with tempfile.TemporaryFile(dir=folder, prefix=".hermes-write-check-"):
            pass
    except OSError as exc:
        raise StartupError(f"{name} {folder} is not writable ({why}): {_reason(exc)}") from None


def _require_appendable(file: Path) -> None:
    if not file.exists():
        return
    try:
        with file.open("ab"):
            pass
    except OSError as exc:
        raise StartupError(f"cannot write the log {file}: {_reason(exc)}") from None


def _check_database(path: Path) -> None:
    from hermes_gateway.store import DatabaseReadOnlyError, SchemaVersionError, check_database

    if path.exists() and not path.is_file():
        raise StartupError(f"the database {path} is not a file")
    try:
        check_database(path)
    except (SchemaVersionError, DatabaseReadOnlyError) as exc:
        raise StartupError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise StartupError(
            f"the database {path} cannot be used ({exc}); move it away to start afresh, "
            "or restore it from a backup"
        ) from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


__all__ = ["REPLACE_TIMEOUT_S", "StartupError", "claim_home", "take_over"]
