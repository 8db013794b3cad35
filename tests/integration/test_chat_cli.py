"""``hermes chat``: the line-mode client, through a pipe and through a real pty."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:  # its own thread: the chat is another process
        yield fake


def env(home: Path, fake: FakeOpenAI) -> dict[str, str]:
    return {
        **os.environ,
        "HERMES_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
        "TERM": "xterm",
    }


def chat(
    home: Path, fake: FakeOpenAI, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hermes_tui.cli", "chat", *args],
        input=stdin,
        env=env(home, fake),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_piped_stdin_is_one_question(hermes_home: Path, model: FakeOpenAI) -> None:
    done = chat(hermes_home, model, stdin="first line\nsecond line\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "echo: first line\nsecond line\n"
    assert done.stderr == ""
    assert model.requests[-1]["messages"][-1]["content"] == "first line\nsecond line"


@pytest.mark.slow
def test_query_shows_tool_progress_and_fails_with_the_model(
    hermes_home: Path, model: FakeOpenAI
) -> None:
    model.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo from-the-tool"})]),
        ScriptedReply(text="The tool said hi."),
    )
    done = chat(hermes_home, model, "-q", "run it")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("  ⚙ terminal") and "echo from-the-tool" in lines[0]
    assert lines[1].startswith("  ✓ terminal (")
    assert lines[2] == "The tool said hi.", done.stdout
    victim = hermes_home / "victim"
    victim.mkdir()
    model.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": f"rm -r {victim}"})]),
        ScriptedReply(text="It was not allowed."),
    )
    denied = chat(hermes_home, model, "-q", "delete it")
    # Nobody at a terminal could say yes: denied at once, and the model is told why.
    assert "needs the operator's approval" in denied.stdout, denied.stdout
    assert "It was not allowed." in denied.stdout and victim.is_dir()
    model.enqueue(ScriptedReply(status=401))  # not retried
    failed = chat(hermes_home, model, "-q", "again")
    assert failed.returncode == 1
    assert "error:" in failed.stdout


@pytest.mark.slow
def test_at_a_terminal(hermes_home: Path, model: FakeOpenAI) -> None:
    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "hermes_tui.cli", "chat"],
        env=env(hermes_home, model),
        encoding="utf-8",
        timeout=20,
        dimensions=(30, 100),
    )
    try:
        child.expect_exact("you>")
        child.sendline("hi pty")
        child.expect_exact("echo: hi pty")
        child.expect_exact("you>")
        # Completion from the command registry.
        child.send("/hel\t")
        child.expect_exact("/help")
        child.send("\r")
        child.expect_exact("Show the commands you can use here")
        child.expect_exact("you>")
        # History: the arrow brings back the last line sent.
        child.send("\x1b[A")
        child.expect_exact("/help")
        child.send("\x15")  # Ctrl+U: clear it again
        # Ctrl+C stops the answer being written, not the chat.
        model.enqueue(ScriptedReply(text="a long answer " * 20, chunk_size=5, hold_at=[3]))
        child.sendline("tell me a lot")
        child.expect_exact("a long answer")
        deadline = time.monotonic() + 10
        while model.held == 0:  # provably half-way
            assert time.monotonic() < deadline, "the answer never reached its hold point"
            time.sleep(0.02)
        child.sendintr()
        child.expect_exact("stopped")
        child.expect_exact("you>")
        child.sendline("still here?")
        child.expect_exact("echo: still here?")
        child.expect_exact("you>")
        # A dangerous command asks here, as the app's dialog would.
        victim = hermes_home / "victim"
        victim.mkdir()
        model.enqueue(
            ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": f"rm -r {victim}"})]),
            ScriptedReply(text="Deleted as asked."),
        )
        child.sendline("delete the victim")
        child.expect_exact("allow?")
        child.sendline("o")
        child.expect_exact("Deleted as asked.")
        child.expect_exact("you>")
        assert not victim.exists()
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
