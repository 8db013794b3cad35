"""The installed ``hermes`` in a real terminal: refuses a broken or busy home before its full
screen opens, and SIGHUP/SIGTERM end it cleanly with the terminal restored."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broken_homes import CASES, Broken, build, one_line, unprivileged
from tests.e2e.tmux import TmuxSession, tmux_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not tmux_available(), reason="needs tmux and the installed hermes"),
]

ROOT = Path(__file__).resolve().parents[2]
HERMES = f"{shlex.quote(sys.executable)} -m hermes_tui.cli"


@pytest.fixture(scope="module", autouse=True)
def tmux_server() -> Iterator[None]:
    """Keep one tmux server up for the module: when the last session ends the server exits,
    and a session created at that moment fails with "server exited unexpectedly"."""
    name = f"hermes-keeper-{os.getpid()}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "36", "sleep", "600"],
        check=True,
    )
    yield
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def env_for(home: Path) -> dict[str, str]:
    return {
        "HERMES_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "HERMES_MODEL": "fake-model",
        "PATH": os.environ["PATH"],
        "TERM": "xterm-256color",
    }


def joined(terminal: TmuxSession) -> str:
    """The pane with wrapped lines joined (a long error line is still one line)."""
    out = subprocess.run(
        ["tmux", "capture-pane", "-p", "-J", "-t", terminal.name], capture_output=True, text=True
    )
    return out.stdout


def modes(terminal: TmuxSession) -> str:
    out = subprocess.run(
        ["tmux", "display", "-p", "-t", terminal.name, "#{alternate_on} #{mouse_any_flag}"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def refusal(terminal: TmuxSession) -> str:
    """Wait for the command to end; return its one output line (asserting exit 2, no screen)."""
    terminal.wait_for(lambda s: "HERMES-EXIT:" in s)
    screen = joined(terminal)
    lines = [line for line in one_line(screen) if not line.startswith("HERMES-EXIT:")]
    assert "HERMES-EXIT:2" in screen, screen
    assert "Traceback" not in screen
    assert modes(terminal) == "0 0", "the full screen was never opened (or was left)"
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tui_refuses_a_broken_home(tmp_path: Path, case: Broken) -> None:
    prefix: list[str] | None = []
    if case.needs_permissions:
        prefix = unprivileged()
        if prefix is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
    home = build(tmp_path, case)
    terminal = TmuxSession(shlex.join(prefix) + " " + HERMES, env=env_for(home))
    try:
        line = refusal(terminal)
    finally:
        terminal.kill()
    assert all(needle in line for needle in case.needles), line


def hermes_pid(terminal: TmuxSession) -> int:
    children = subprocess.run(
        ["pgrep", "-P", str(terminal.pid())], capture_output=True, text=True
    ).stdout.split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=lambda s: s.name)
def test_stop_signal_stops_the_gateway_and_restores_the_terminal(
    hermes_home: Path, sig: signal.Signals
) -> None:
    terminal = TmuxSession(HERMES, env=env_for(hermes_home))
    try:
        terminal.wait_for(lambda s: "local connected" in s)
        assert modes(terminal) == "1 1", "full screen with mouse reporting while running"
        os.kill(hermes_pid(terminal), sig)
        screen = terminal.wait_for(lambda s: "HERMES-EXIT:" in s)
        assert "HERMES-EXIT:0" in screen and "Traceback" not in screen
        assert modes(terminal) == "0 0", "alternate screen and mouse reporting are off again"
    finally:
        terminal.kill()
    log = (hermes_home / "logs" / "gateway.log").read_text()
    assert "gateway stopped" in log  # the gateway's stop() ran: store closed, platforms down


def test_closing_the_terminal_stops_the_gateway_and_the_process(hermes_home: Path) -> None:
    """The window closed (tmux killed, SSH dropped): every write to the terminal fails from
    then on. The gateway still stops cleanly and the process ends, freeing the home; before,
    the screen's shutdown waited forever on its dead writer, holding the home's lock."""
    terminal = TmuxSession(HERMES, env=env_for(hermes_home))
    try:
        terminal.wait_for(lambda s: "local connected" in s)
        pid = hermes_pid(terminal)
    finally:
        terminal.kill()
    deadline = time.monotonic() + 15
    while _alive(pid):
        assert time.monotonic() < deadline, f"hermes (pid {pid}) still runs after its terminal went"
        time.sleep(0.1)
    log = (hermes_home / "logs" / "gateway.log").read_text()
    assert "gateway stopped" in log
    again = TmuxSession(HERMES, env=env_for(hermes_home))  # the home is free again
    try:
        again.wait_for(lambda s: "local connected" in s)
    finally:
        again.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[-1][:1]
    return state != "Z"  # a zombie has ended; only its parent has not looked yet


def test_second_hermes_on_a_busy_home_names_the_first(hermes_home: Path) -> None:
    env = {**os.environ, **env_for(hermes_home)}
    first = subprocess.Popen(
        [sys.executable, "-m", "hermes_tui.cli", "gateway", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        log = hermes_home / "logs" / "gateway.log"
        while not (log.exists() and "gateway running" in log.read_text()):
            assert time.monotonic() < deadline and first.poll() is None, "gateway did not start"
            time.sleep(0.05)
        terminal = TmuxSession(HERMES, env=env_for(hermes_home))
        try:
            line = refusal(terminal)
        finally:
            terminal.kill()
        assert f"PID {first.pid}" in line and str(hermes_home) in line, line
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=15)
