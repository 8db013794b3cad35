"""The installed ``hermes`` in a real terminal: start, chat, complete, quit, restore."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.tmux import TmuxSession, tmux_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not tmux_available(), reason="needs tmux and the installed hermes"),
]


@pytest.fixture
def model_server(tmp_path: Path):
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                {
                    "text": "Running it.",
                    "tool_calls": [
                        {"name": "terminal", "arguments": {"command": "echo from-the-tool"}}
                    ],
                },
                {"text": "The tool said **from-the-tool**.", "chunk_size": 4, "delay": 0.01},
            ]
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    line = proc.stdout.readline()
    assert line.startswith("READY "), line
    yield line.split()[1]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)


@pytest.fixture
def terminal(hermes_home: Path, model_server: str):
    env = {
        "HERMES_HOME": str(hermes_home),
        "OPENAI_BASE_URL": model_server,
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
        "PATH": os.environ["PATH"],
        "TERM": "xterm-256color",
    }
    session = TmuxSession("hermes", env=env)
    yield session
    session.kill()


def test_chat_tool_autocomplete_and_clean_quit(terminal: TmuxSession):
    terminal.wait_for(lambda s: "local connected" in s and "Message Hermes" in s)
    assert terminal.alternate_screen()
    terminal.type("run the tool")
    terminal.send("Enter")
    screen = terminal.wait_for(lambda s: "The tool said from-the-tool." in s)
    assert "terminal" in screen and "echo from-the-tool" in screen  # the tool pane
    terminal.type("/mo")
    screen = terminal.wait_for(lambda s: "/model" in s and "Show or switch the model" in s)
    terminal.send("Escape")
    terminal.send("C-q")
    screen = terminal.wait_for(lambda s: "HERMES-EXIT:0" in s)
    assert not terminal.alternate_screen(), "the terminal is back on its normal screen"
    assert "Traceback" not in screen


def test_sigterm_restores_the_terminal(terminal: TmuxSession):
    terminal.wait_for(lambda s: "local connected" in s)
    shell = terminal.pid()
    children = subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True)
    hermes_pids = [int(p) for p in children.stdout.split() if p.strip()]
    assert hermes_pids
    for pid in hermes_pids:
        os.kill(pid, signal.SIGTERM)
    screen = terminal.wait_for(lambda s: "HERMES-EXIT:" in s)
    assert not terminal.alternate_screen()
    assert "Traceback" not in screen


def test_resize_to_80x24_and_back_then_quit(terminal: TmuxSession):
    terminal.wait_for(lambda s: "local connected" in s)
    subprocess.run(
        ["tmux", "resize-window", "-t", terminal.name, "-x", "80", "-y", "24"], check=True
    )
    screen = terminal.wait_for(lambda s: "Sessions" not in s.splitlines()[1] and "Message" in s)
    assert max(len(line) for line in screen.splitlines()) <= 80
    terminal.send("F2")
    terminal.wait_for(lambda s: "Sessions" in s)
    subprocess.run(
        ["tmux", "resize-window", "-t", terminal.name, "-x", "160", "-y", "48"], check=True
    )
    terminal.wait_for(lambda s: "Platforms" in s and "Cron" in s)
    terminal.send("C-q")
    screen = terminal.wait_for(lambda s: "HERMES-EXIT:0" in s)
    assert not terminal.alternate_screen() and "Traceback" not in screen


def _server_option(name: str) -> str:
    out = subprocess.run(["tmux", "show-options", "-s", "-v", name], capture_output=True, text=True)
    return out.stdout.strip()


def test_copy_reaches_the_clipboard_and_typing_reaches_the_input(terminal: TmuxSession):
    """Alt+C copies the last answer through OSC 52 (tmux keeps it as a paste buffer with
    set-clipboard on); keys typed while the Sessions list has focus filter it, and Esc and
    plain typing bring the input back."""
    before = _server_option("set-clipboard") or "external"
    subprocess.run(["tmux", "set-option", "-s", "set-clipboard", "on"], check=True)
    try:
        terminal.wait_for(lambda s: "local connected" in s and "Message Hermes" in s)
        terminal.type("run the tool")
        terminal.send("Enter")
        terminal.wait_for(lambda s: "The tool said from-the-tool." in s)
        terminal.send("M-c")
        terminal.wait_for(lambda s: "Copied the last answer" in s)
        buffer = subprocess.run(["tmux", "show-buffer"], capture_output=True, text=True).stdout
        assert buffer == "The tool said **from-the-tool**."

        terminal.send("F2")
        terminal.type("zz")
        # In the filter box: the line under the Sessions header, not the input at the bottom.
        terminal.wait_for(
            lambda s: s.split("Sessions", 1)[-1].splitlines()[1].strip().startswith("zz")
        )
        terminal.send("Escape")
        # A lone ESC byte followed at once by more bytes is read as Alt+key by any terminal
        # app; a person's next keystroke comes later than this.
        time.sleep(0.3)
        terminal.type("second question")
        terminal.send("Enter")
        terminal.wait_for(lambda s: "echo: second question" in s)
    finally:
        subprocess.run(["tmux", "set-option", "-s", "set-clipboard", before], check=False)
