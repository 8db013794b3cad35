"""Drive the installed ``hermes`` in a real terminal (tmux) and read what a person sees."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable


class TmuxSession:
    def __init__(self, command: str, *, env: dict[str, str], width: int = 120, height: int = 36):
        self.name = f"hermes-e2e-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # -u: a tmux server started from a test run may carry COLUMNS/LINES in its global
        # environment, and Textual would then lay out for that size, not the pane's.
        script = f"env -u COLUMNS -u LINES {exports} {command}; echo HERMES-EXIT:$?; sleep 60"
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                "bash",
                "--norc",
                "-c",
                script,
            ],
            check=True,
            env={**os.environ, "TERM": "xterm-256color"},
        )

    def capture(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def alternate_screen(self) -> bool:
        out = subprocess.run(
            ["tmux", "display", "-p", "-t", self.name, "#{alternate_on}"],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() == "1"

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"screen never matched; last screen:\n{screen}")

    def pid(self) -> int:
        out = subprocess.run(
            ["tmux", "list-panes", "-t", self.name, "-F", "#{pane_pid}"],
            capture_output=True,
            text=True,
        )
        return int(out.stdout.strip())

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def tmux_available() -> bool:
    return shutil.which("tmux") is not None and shutil.which("hermes") is not None
