"""Reading ``gateway.pid`` (ours or Hermes Agent's) and asking who holds a home, without taking it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hermes_gateway.home_lock import PID_FILENAME, HomeLock, holder, parse_pid, pid_alive
from hermes_gateway.service import status_lines
from hermes_gateway.status_file import STATUS_FILENAME
from hermes_gateway.text import uptime


def test_parse_pid_reads_both_formats() -> None:
    assert parse_pid("1234\n") == 1234
    assert parse_pid('{"pid": 99, "kind": "hermes-gateway", "argv": []}') == 99
    assert parse_pid("") is None and parse_pid("{not json") is None
    assert parse_pid('{"pid": "7"}') is None and parse_pid('{"pid": -3}') is None


def test_holder_looks_without_taking(hermes_home: Path) -> None:
    assert holder(hermes_home) is None
    (hermes_home / PID_FILENAME).write_text("999999\n")  # stale: its writer is gone
    assert holder(hermes_home) is None
    assert (hermes_home / PID_FILENAME).read_text() == "999999\n"  # left as it was
    with HomeLock.acquire(hermes_home):
        assert holder(hermes_home) == os.getpid()
    assert holder(hermes_home) is None


def test_holder_sees_hermes_agents_gateway(hermes_home: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (hermes_home / PID_FILENAME).write_text(json.dumps({"pid": other.pid, "kind": "x"}))
        assert pid_alive(other.pid) and holder(hermes_home) == other.pid
        lines = status_lines(hermes_home)
        assert lines[0].startswith(f"running (PID {other.pid})") and "no status file" in lines[0]
    finally:
        other.kill()
        other.wait()
    assert not pid_alive(other.pid) and holder(hermes_home) is None


def test_status_lines_of_a_running_gateway(hermes_home: Path) -> None:
    with HomeLock.acquire(hermes_home):
        (hermes_home / STATUS_FILENAME).write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "started_at": 1000.0,
                    "mode": "headless",
                    "platforms": {"telegram": "connected", "api": "failed"},
                }
            )
        )
        assert status_lines(hermes_home, now=1000.0 + 7530) == [
            f"running (PID {os.getpid()}, up 2h 05m, headless)",
            "platforms: api: failed, telegram: connected",
        ]


def test_uptime_words() -> None:
    assert [uptime(s) for s in (5, 600, 7530, 3 * 86_400 + 4 * 3600)] == [
        "5s",
        "10m",
        "2h 05m",
        "3d 4h",
    ]
