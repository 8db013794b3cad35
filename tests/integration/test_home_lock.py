"""One gateway per HERMES_HOME: a second ``hermes gateway run`` is refused with the first's PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hermes_gateway.home_lock import PID_FILENAME, HomeLock, HomeLockedError

ROOT = Path(__file__).resolve().parents[2]


def test_lock_refuses_a_second_holder_and_names_the_first(hermes_home: Path) -> None:
    with HomeLock.acquire(hermes_home):
        assert (hermes_home / PID_FILENAME).read_text().strip() == str(os.getpid())
        with pytest.raises(HomeLockedError) as refused:
            HomeLock.acquire(hermes_home)  # flock: a second open file description conflicts
        assert refused.value.pid == os.getpid()
        assert f"PID {os.getpid()}" in str(refused.value)
    assert not (hermes_home / PID_FILENAME).exists()
    HomeLock.acquire(hermes_home).release()


def test_a_stale_pid_file_is_taken_over(hermes_home: Path) -> None:
    (hermes_home / PID_FILENAME).write_text("999999\n")  # left by a gateway that died
    with HomeLock.acquire(hermes_home):
        assert (hermes_home / PID_FILENAME).read_text().strip() == str(os.getpid())


def start(home: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "HERMES_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "HERMES_MODEL": "fake-model",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hermes_tui.cli", "gateway", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_running(home: Path, proc: subprocess.Popen[str], count: int = 1) -> None:
    log = home / "logs" / "gateway.log"
    deadline = time.monotonic() + 20
    while not (log.exists() and log.read_text().count("gateway running") >= count):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_gateways_on_one_home(hermes_home: Path) -> None:
    first = start(hermes_home)
    try:
        wait_running(hermes_home, first)
        second = start(hermes_home)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and f"PID {first.pid}" in lines[0], err
        # kill -9 leaves gateway.pid behind, but the kernel dropped the lock: taken over.
        first.kill()
        first.wait(timeout=10)
        assert (hermes_home / PID_FILENAME).exists()
        third = start(hermes_home)
        try:
            wait_running(hermes_home, third, count=2)
            assert (hermes_home / PID_FILENAME).read_text().strip() == str(third.pid)
        finally:
            third.send_signal(signal.SIGTERM)
            _, err = third.communicate(timeout=15)
        assert third.returncode == 0, err
        assert not (hermes_home / PID_FILENAME).exists()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
