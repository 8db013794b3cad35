"""``hermes gateway`` as Hermes Agent users type it: bare, ``--replace``, ``-v``/``-q``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hermes_gateway.home_lock import PID_FILENAME, HomeLock, HomeLockedError
from tests.integration.test_home_lock import wait_running

ROOT = Path(__file__).resolve().parents[2]


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "HERMES_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "HERMES_MODEL": "fake-model",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hermes_tui.cli", "gateway", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_bare_gateway_runs_and_replace_takes_over(hermes_home: Path) -> None:
    first = start(hermes_home)  # bare: like 'gateway run'
    second = third = None
    try:
        wait_running(hermes_home, first)
        second = start(hermes_home)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2 and f"PID {first.pid}" in err and "--replace" in err
        third = start(hermes_home, "run", "--replace", "-vv")
        _, first_err = first.communicate(timeout=60)
        assert first.returncode == 0  # stopped cleanly (SIGTERM), not killed
        assert "gateway stopped" in first_err
        wait_running(hermes_home, third, count=2)
        assert (hermes_home / PID_FILENAME).read_text().strip() == str(third.pid)
        _, third_err = stop(third)
        assert third.returncode == 0
        assert "DEBUG" in third_err and "gateway running" in third_err  # -vv: debug lines too
    finally:
        for proc in (first, second, third):
            if proc is not None:
                stop(proc)


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def hermes_agent_record(home: Path, pid: int) -> None:
    """What Hermes Agent's gateway writes to gateway.pid (it does not flock the file)."""
    record = {"pid": pid, "kind": "hermes-gateway", "argv": ["hermes", "gateway"], "start_time": 1}
    (home / PID_FILENAME).write_text(json.dumps(record))


def test_hermes_agents_live_gateway_is_named_and_its_stale_record_taken_over(
    hermes_home: Path,
) -> None:
    other = sleeper()
    try:
        hermes_agent_record(hermes_home, other.pid)
        with pytest.raises(HomeLockedError) as refused:
            HomeLock.acquire(hermes_home)
        assert refused.value.pid == other.pid and refused.value.foreign
        assert "Hermes Agent's gateway" in str(refused.value)
        assert json.loads((hermes_home / PID_FILENAME).read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()
    with HomeLock.acquire(hermes_home):  # the process is gone: its record is stale
        assert (hermes_home / PID_FILENAME).read_text().strip() == str(os.getpid())


def test_replace_stops_hermes_agents_gateway(hermes_home: Path) -> None:
    from hermes_gateway.startup import take_over

    other = sleeper()
    try:
        hermes_agent_record(hermes_home, other.pid)
        with take_over(hermes_home, timeout=10):
            assert other.wait(timeout=10) != 0  # it got SIGTERM
            assert (hermes_home / PID_FILENAME).read_text().strip() == str(os.getpid())
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
