"""Run the installed ``hermes`` in a pseudo-terminal and watch what it paints."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time


def spawn_hermes(
    env_extra: dict[str, str] | None = None,
    cols: int = 120,
    rows: int = 36,
    home: str | None = None,
):
    """Start ``hermes`` on a fresh pty (on ``home``, else a new empty one); returns (process,
    master fd, start time, home)."""
    home = home or tempfile.mkdtemp(prefix="hermes-bench-")
    env = {**os.environ, "HERMES_HOME": home, "TERM": "xterm-256color", **(env_extra or {})}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    exe = shutil.which("hermes")
    if exe is None:
        raise SystemExit("hermes is not installed: pip install -e .")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [exe], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    return proc, master, started, home


def read_until(master: int, needle: bytes, timeout: float = 10.0) -> float:
    """Read the terminal until ``needle`` appears; returns when it did (perf_counter)."""
    seen = b""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
            if needle in seen:
                return time.perf_counter()
    raise TimeoutError(f"{needle!r} never painted")


def drain(master: int, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                os.read(master, 65536)
            except OSError:
                return


def stop(proc: subprocess.Popen, master: int, home: str) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
    os.close(master)
    shutil.rmtree(home, ignore_errors=True)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of ``pid`` in MB (``VmHWM``: its peak)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0
