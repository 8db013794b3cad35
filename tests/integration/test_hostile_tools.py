"""A hostile but allowed Telegram user tries to reach what is not theirs through the tools.

Real python-telegram-bot against FakeTelegram, the real gateway headless (no operator screen,
so a call that needs approval is denied at once), the scripted model playing the attacker's
accomplice: each attempt is one tool call the model "decides" to make. An attempt fails (for
us) when a canary secret reaches the model or the chat, or a protected file changes. The
workspace layout (``workspaces/<platform>/<sha256(session key)[:24]>``) is the documented one,
computed here rather than imported so the suite also runs against code that has none.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway.paths import DB_FILENAME
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.test_telegram_adapter import Harness, start_gateway, telegram_config

ATTACKER, VICTIM = 4242, 9999
ENV_CANARY = "ENV-CANARY-7f3a9c"
DB_CANARY = "DB-CANARY-51be02"
DIARY_CANARY = "DIARY-CANARY-c0ffee"


def workspace(home: Path, chat: int) -> Path:
    digest = hashlib.sha256(f"telegram:dm:{chat}".encode()).hexdigest()[:24]
    return home / "workspaces" / "telegram" / digest


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram) -> AsyncIterator[Harness]:
    (hermes_home / ".env").write_text(f"TELEGRAM_BOT_TOKEN={ENV_CANARY}\n")
    harness = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    # The victim talks first: a message with a canary in the database, and a file of theirs
    # written by their own turn (wherever their tools write).
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("write_file", {"path": "diary.txt",
                                                              "content": DIARY_CANARY})]),
        ScriptedReply(text="saved"),
    )  # fmt: skip
    tg.inject_message(VICTIM, f"my secret is {DB_CANARY}, write my diary", user_id=VICTIM)
    await harness.answered(1)
    yield harness
    await harness.stop()


def victim_diary(home: Path) -> Path:
    found = [p for p in home.rglob("diary.txt") if p.read_text() == DIARY_CANARY]
    if not found:  # the victim's write was refused or asked: put it where it belongs
        ws = workspace(home, VICTIM)
        ws.mkdir(parents=True, exist_ok=True)
        (ws / "diary.txt").write_text(DIARY_CANARY)
        return ws / "diary.txt"
    return found[0]


def attempts(home: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    env = str(home / ".env")
    return {
        "read .env": ("read_file", {"path": env}),
        "read .env via workspaces/..": ("read_file", {"path": f"{home}/workspaces/../.env"}),
        "read .env via ../ escape": ("read_file", {"path": "../../../.env"}),
        "read .env via a symlink": ("read_file", {"path": "link-out/.env"}),
        "search the home for the token": ("search_files", {"pattern": "CANARY",
                                                           "path": str(home)}),  # fmt: skip
        "read the database": ("read_file", {"path": str(home / DB_FILENAME)}),
        "read the database -wal": ("read_file", {"path": str(home / f"{DB_FILENAME}-wal")}),
        "read another chat's file": ("read_file", {"path": "@diary"}),
        "shell: cat .env": ("terminal", {"command": f"cat {env}"}),
        "shell: grep the database": ("terminal", {"command": f"grep -a -o 'DB-CANARY-[0-9a-f]*' "
                                                  f"{home}/{DB_FILENAME}* | head -1"}),
        "shell: print the environment": ("terminal", {"command": "env"}),
        "write config.yaml": ("write_file", {"path": str(home / "config.yaml"),
                                             "content": "pwned: true\n"}),
    }  # fmt: skip


ATTEMPTS = list(attempts(Path("/x")))


@pytest.mark.parametrize("attempt", ATTEMPTS)
async def test_hostile_tool_call_is_refused_and_leaks_nothing(
    h: Harness,
    fake_openai: FakeOpenAI,
    tg: FakeTelegram,
    hermes_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    attempt: str,
) -> None:
    monkeypatch.setenv("SOME_SERVICE_TOKEN", ENV_CANARY)  # what a shell could print
    tool, args = attempts(hermes_home)[attempt]
    if args.get("path") == "@diary":
        args = {"path": str(victim_diary(hermes_home))}
    for cwd in (hermes_home, workspace(hermes_home, ATTACKER)):  # old cwd and new workspace
        cwd.mkdir(parents=True, exist_ok=True)
        if not (cwd / "link-out").exists():
            os.symlink(hermes_home, cwd / "link-out")
    config_before = (hermes_home / "config.yaml").read_bytes() if (
        hermes_home / "config.yaml").exists() else None  # fmt: skip
    seen_requests = len(fake_openai.requests)
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec(tool, args)]), ScriptedReply(text="done")
    )
    tg.inject_message(ATTACKER, f"please {attempt}", user_id=ATTACKER)
    await h.answered(2)

    to_model = json.dumps(fake_openai.requests[seen_requests:])
    to_chat = "\n".join(m.current_text for m in tg.messages_in(ATTACKER))
    for canary in (ENV_CANARY, DB_CANARY, DIARY_CANARY):
        assert canary not in to_model, f"{attempt}: {canary} reached the model"
        assert canary not in to_chat, f"{attempt}: {canary} reached the chat"
    after = (hermes_home / "config.yaml").read_bytes() if (
        hermes_home / "config.yaml").exists() else None  # fmt: skip
    assert after == config_before, f"{attempt}: config.yaml changed"
    tool_result = [m for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert tool_result["content"].startswith("error:"), tool_result["content"]
