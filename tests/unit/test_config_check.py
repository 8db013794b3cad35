"""``hermes config check``: every key of config.yaml and .env with its fate; 1 on errors."""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from hermes_gateway.config_check import run
from hermes_tui.cli import build_parser

FIXTURE = Path(__file__).parent.parent / "fixtures" / "hermes_home"


def check(home: Path, monkeypatch) -> tuple[int, list[str]]:
    monkeypatch.setenv("HERMES_HOME", str(home))
    out = io.StringIO()
    code = run(argparse.Namespace(command="config", config_command="check"), out=out)
    return code, out.getvalue().splitlines()


def line_of(lines: list[str], key: str) -> str:
    (line,) = [ln for ln in lines if ln.split()[1:2] == [key]]
    return line


def test_the_hermes_agent_home_key_by_key(tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    code, lines = check(home, monkeypatch)
    assert code == 0
    assert lines[0] == f"{home / 'config.yaml'}:"
    assert f"{home / '.env'}:" in lines
    assert line_of(lines, "agent.max_turns").split() == [
        "honoured",
        "agent.max_turns",
        "as",
        "agent.max_iterations",
    ]
    assert line_of(lines, "memory.*").split()[0] == "ignored"
    assert "not supported here" in line_of(lines, "toolsets")
    assert line_of(lines, "session_reset.mode").split()[0] == "honoured"
    assert line_of(lines, "WEBHOOK_SECRET").split()[0] == "honoured"
    assert line_of(lines, "DISCORD_REACTIONS").split()[0] == "ignored"
    assert lines[-1].endswith(", 0 errors")
    text = "\n".join(lines)
    assert "fixture-api-key" not in text and "123456:fixture-token" not in text  # no values


def test_errors_are_listed_with_the_rest_and_exit_1(hermes_home, monkeypatch):
    (hermes_home / "config.yaml").write_text(
        "model: gpt-4o\nagent:\n  max_turn: 3\nmemory:\n  provider: honcho\n"
    )
    (hermes_home / ".env").write_text("HERMES_MAX_ITERATIONS=lots\n")
    code, lines = check(hermes_home, monkeypatch)
    assert code == 1
    assert line_of(lines, "model").split()[:2] == ["honoured", "model"]
    assert "did you mean 'agent.max_turns'" in line_of(lines, "agent.max_turn")
    assert line_of(lines, "memory.*").startswith("  ignored")
    assert "whole number" in line_of(lines, "HERMES_MAX_ITERATIONS")
    assert lines[-1] == "1 honoured, 0 accepted, 1 ignored, 2 errors"


def test_a_home_without_files(hermes_home, monkeypatch):
    code, lines = check(hermes_home, monkeypatch)
    assert code == 0
    assert lines == [
        f"{hermes_home / 'config.yaml'}: not found",
        f"{hermes_home / '.env'}: not found",
        "0 honoured, 0 accepted, 0 ignored, 0 errors",
    ]


def test_the_command_is_wired_into_hermes():
    args = build_parser().parse_args(["config", "check"])
    assert (args.command, args.config_command) == ("config", "check")
