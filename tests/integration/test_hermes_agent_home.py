"""``hermes gateway run`` on a Hermes Agent home starts (it used to exit 2 at once).

The home is the fixture written from Hermes Agent 0.19's documented formats. Its Telegram and
Discord tokens are blanked in the environment (they would reach the real services); the API
server and the separate webhook listener run on 127.0.0.1 (ports 0 in its .env).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.helpers import Recorder

FIXTURE = Path(__file__).parent.parent / "fixtures" / "hermes_home"


def wait_for(log: Path, pattern: str, timeout: float = 20) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and (found := re.search(pattern, log.read_text())):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not logged:\n{log.read_text() if log.exists() else ''}")


def get(url: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.slow
async def test_gateway_runs_on_a_hermes_agent_home(tmp_path, fake_openai):
    home = tmp_path / "hermes"
    shutil.copytree(FIXTURE, home)
    env = {
        **os.environ,
        "HERMES_HOME": str(home),
        "OPENAI_BASE_URL": fake_openai.base_url,
        "TELEGRAM_BOT_TOKEN": "",
        "DISCORD_BOT_TOKEN": "",
    }
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "hermes_tui.cli", "gateway", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = home / "logs" / "gateway.log"
    try:
        # Blocking waits off the loop: the fake model server runs on it.
        await asyncio.to_thread(wait_for, log, "gateway running")
        api = await asyncio.to_thread(
            wait_for, log, r"platform api: connected: http://127\.0\.0\.1:(\d+)"
        )
        hook = await asyncio.to_thread(
            wait_for, log, r"platform webhook: connected: http://127\.0\.0\.1:(\d+), 1 webhook"
        )
        await asyncio.to_thread(
            wait_for, log, "Hermes Agent settings not supported here, ignored: .*toolsets"
        )
        key = "fixture-api-key-0123456789"
        models = await asyncio.to_thread(get, f"http://127.0.0.1:{api[1]}/v1/models", key)
        assert models["data"][0]["id"] == "my-hermes"  # API_SERVER_MODEL_NAME
        health = await asyncio.to_thread(get, f"http://127.0.0.1:{hook[1]}/health")
        assert health["status"] == "ok"  # the webhook listener needs no API key
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert err.count("not supported here, ignored") == 1  # said once, not per key


async def test_ignored_settings_are_one_notice_at_start(hermes_home, fake_openai):
    """The TUI shows Notices in the conversation; headless logs them (as the test above)."""
    (hermes_home / "config.yaml").write_text(
        "memory:\n  provider: honcho\ntoolsets: [web]\nagent:\n  max_turns: 9\n"
    )
    config = make_config(hermes_home, fake_openai)
    assert config.agent.max_iterations == 9
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    await gateway.start(local=True)
    try:
        notices = [n.text for n in recorder.of(ev.Notice)]
        assert notices == [
            "Hermes Agent settings not supported here, ignored: memory.*, toolsets "
            "(hermes config check lists them)"
        ]
    finally:
        await gateway.stop()
        recorder.close()
