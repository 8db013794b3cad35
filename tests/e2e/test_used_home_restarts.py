"""The installed ``hermes`` restarted again and again on a home that has been used for a day
(tests/homes.py): every start must reach the Sessions list and the shown transcript, and quit
cleanly, with no traceback on the screen.

Issue 13: with a Telegram chat in the store, about half the starts crashed
(``DuplicateIds: ... 'tools-empty'``: the shown session was loaded twice at once). Tests that
start from an empty home never saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.tmux import TmuxSession, tmux_available
from tests.fakes.telegram_server import FakeTelegram
from tests.homes import TELEGRAM_TOKEN, HomeManifest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not tmux_available(), reason="needs tmux and the installed hermes"),
]

ROOT = Path(__file__).resolve().parents[2]
STARTS = 6
#: What a crash or a broken start leaves on the screen.
CRASH_MARKS = ("Traceback", "DuplicateIds", "Error:", "Exception")


@pytest.fixture(scope="module", autouse=True)
def tmux_server() -> Iterator[None]:
    """One tmux server for the module: a session created just as the last one ended (and the
    server with it) fails with "server exited unexpectedly"."""
    name = f"hermes-keeper-{os.getpid()}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "36", "sleep", "600"],
        check=True,
    )
    yield
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


@contextlib.contextmanager
def telegram_in_thread() -> Iterator[FakeTelegram]:
    """The fake Telegram Bot API on its own loop in a thread (this test is synchronous: it
    waits on tmux), with the token the used home's config.yaml holds."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-telegram", daemon=True)
    thread.start()
    fake = FakeTelegram(TELEGRAM_TOKEN)
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
        yield fake
    finally:
        if fake.running:
            asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def platform_env() -> Iterator[dict[str, str]]:
    """Telegram connected to the fake, so the Telegram chats in the store belong to a live
    platform (the issue's case); Discord stays on the config's dead port (reconnecting)."""
    with telegram_in_thread() as fake:
        yield {"TELEGRAM_BASE_URL": fake.base_url, "TELEGRAM_BASE_FILE_URL": fake.base_file_url}


def env_for(home: Path) -> dict[str, str]:
    """The installed ``hermes`` running this tree; the model on a dead local port, chat
    platforms where the home's config points them (127.0.0.1:9) unless overridden."""
    return {
        "HERMES_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
        "PATH": os.environ["PATH"],
        "TERM": "xterm-256color",
    }


def shown_texts(manifest: HomeManifest) -> tuple[str, str]:
    """(a name the Sessions list shows, the start of the local transcript's last answer)."""
    newest_chat = max(
        (s for s in manifest.sessions if not s.ended and s.platform == "telegram"),
        key=lambda s: s.updated_at,
    )
    local = manifest.active("local:dm:operator")
    with sqlite3.connect(manifest.home_path / "hermes_tui.db") as db:
        row = db.execute(
            "SELECT content FROM messages WHERE session_id = ? AND role = 'assistant' "
            "AND content IS NOT NULL ORDER BY id DESC LIMIT 1",
            (local.id,),
        ).fetchone()
    return newest_chat.title or newest_chat.display_name, row[0][:24]


def exit_code(screen: str) -> int | None:
    match = re.search(r"HERMES-EXIT:(\d+)", screen)
    return None if match is None else int(match.group(1))


@pytest.mark.timeout(240)
def test_restarts_on_a_used_home_never_crash(
    used_home: HomeManifest, platform_env: dict[str, str]
) -> None:
    hermes = shutil.which("hermes")
    assert hermes is not None
    chat_name, last_answer = shown_texts(used_home)
    failures: list[str] = []
    for start in range(1, STARTS + 1):
        terminal = TmuxSession(
            hermes, env={**env_for(used_home.home_path), **platform_env}, width=160, height=48
        )
        try:
            try:
                terminal.wait_for(
                    lambda s: (
                        ("Sessions" in s and chat_name in s and last_answer in s)
                        or "HERMES-EXIT:" in s
                    ),
                    timeout=20,
                )
            except AssertionError as exc:
                failures.append(f"start {start}: never showed the home\n{exc}")
                continue
            terminal.send("C-q")  # app.quit (hermes_tui/app.py BINDINGS)
            screen = terminal.wait_for(lambda s: "HERMES-EXIT:" in s, timeout=20)
            code = exit_code(screen)
            marks = [m for m in CRASH_MARKS if m in screen]
            if code != 0 or marks:
                failures.append(f"start {start}: exit {code}, {marks}\n{screen}")
        finally:
            terminal.kill()
    assert not failures, f"{len(failures)} of {STARTS} starts failed:\n" + "\n".join(failures)
