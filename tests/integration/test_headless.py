"""``hermes gateway run``: same core, no screen, logs, clean stop on SIGTERM and Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


def start(home, model_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "HERMES_HOME": str(home),
        "OPENAI_BASE_URL": model_url,
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hermes_tui.cli", "gateway", "run"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for_log(home, needle: str, timeout: float = 15) -> None:
    log = home / "logs" / "gateway.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not logged")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_runs_headless_and_stops_cleanly(hermes_home, sig):
    proc = start(hermes_home, "http://127.0.0.1:9/v1")
    try:
        wait_for_log(hermes_home, "gateway running")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "gateway running" in err and "stopping" in err and "gateway stopped" in err
    assert "Traceback" not in err
    assert "gateway stopped" in (hermes_home / "logs" / "gateway.log").read_text()


def test_bad_config_is_reported_and_exits_2(hermes_home):
    (hermes_home / "config.yaml").write_text("gateway:\n  busy_mood: queue\n")
    proc = start(hermes_home, "http://127.0.0.1:9/v1")
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert "gateway.busy_mood" in err and "did you mean 'gateway.busy_mode'" in err
