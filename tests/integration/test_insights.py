"""``/insights`` on a used home (tests/homes.py): through the real Telegram adapter a user sees
their own chat's activity only; the operator sees every chat, per platform. The expected
figures are counted here from the raw rows, independently of the store's query."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from hermes_gateway import events as ev
from hermes_gateway.commands.insights import USAGE, parse_insights_args
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.store import default_db_path
from hermes_gateway.store.insights import read_activity
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import Recorder
from tests.homes import HomeManifest

ALICE = 1001


@dataclass
class Counted:
    sessions: set[str] = field(default_factory=set)
    users: int = 0
    answers: int = 0
    tools: Counter[str] = field(default_factory=Counter)
    prompt: int = 0
    completion: int = 0
    platforms: Counter[str] = field(default_factory=Counter)
    days: set[object] = field(default_factory=set)


def count(db_path, since: float, key: str | None = None) -> Counted:
    """Row by row in Python: what /insights must report."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT s.session_key, s.platform, m.session_id, m.role, m.content, m.name,"
            " m.prompt_tokens, m.completion_tokens, m.created_at"
            " FROM messages m JOIN sessions s ON s.id = m.session_id"
        ).fetchall()
    out = Counted()
    for skey, platform, sid, role, content, name, prompt, completion, created in rows:
        if created < since or (key is not None and skey != key):
            continue
        out.sessions.add(sid)
        out.prompt += prompt
        out.completion += completion
        if role == "user":
            out.users += 1
            out.days.add(datetime.fromtimestamp(created).date())
        elif role == "assistant" and content:
            out.answers += 1
        elif role == "tool":
            out.tools[name] += 1
        if role in ("user", "assistant") and (role == "user" or content):
            out.platforms[platform] += 1
    return out


def figures(c: Counted) -> list[str]:
    return [
        f"Sessions: {len(c.sessions):,} · Messages: {c.users + c.answers:,} "
        f"({c.users:,} in, {c.answers:,} out) · Tool calls: {sum(c.tools.values()):,}",
        f"Tokens: {c.prompt:,} in / {c.completion:,} out",
        f"Active days: {len(c.days)}",
    ]


def test_arguments() -> None:
    assert parse_insights_args("") == (30, None)
    assert parse_insights_args("7") == (7, None)
    assert parse_insights_args("--days 14 --source telegram") == (14, "telegram")
    assert parse_insights_args("\u2014days 3") == (3, None)  # a phone's dash
    for bad in ("0", "-5", "abc", "99999", "7 days", "--days", "1e3"):
        assert parse_insights_args(bad) == USAGE, bad


def test_the_window_counts_only_what_happened_since(used_home: HomeManifest) -> None:
    db = default_db_path(used_home.home_path)
    oldest = min(s.created_at for s in used_home.sessions)
    middle = oldest + (time.time() - oldest) / 2
    with sqlite3.connect(db) as conn:
        for since in (0.0, middle):
            got = read_activity(conn, since)
            want = count(db, since)
            assert (got.sessions, got.user_messages, got.answers) == (
                len(want.sessions),
                want.users,
                want.answers,
            )
            assert (got.prompt_tokens, got.completion_tokens) == (want.prompt, want.completion)
            assert got.tools == sorted(want.tools.items(), key=lambda t: (-t[1], t[0]))
            assert got.active_days == len(want.days)
            assert [(p.platform, p.messages) for p in got.platforms] == sorted(
                want.platforms.items(), key=lambda t: (-t[1], t[0])
            )
        assert read_activity(conn, middle).user_messages < read_activity(conn, 0.0).user_messages


@pytest.fixture
async def gateway_on_used_home(used_home: HomeManifest, fake_openai: FakeOpenAI, tg: FakeTelegram):
    config = make_config(
        used_home.home_path,
        fake_openai,
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_BASE_URL=tg.base_url,
        TELEGRAM_BASE_FILE_URL=tg.base_file_url,
        TELEGRAM_ALLOWED_USERS=str(ALICE),
    )
    config.platforms.discord.enabled = False
    config.platforms.telegram.rate_interval = 0.003
    gateway = build_gateway(config)
    rec = Recorder(gateway.bus)
    await gateway.start(local=True)
    await rec.wait_for(
        lambda: any(
            e.platform == "telegram" and e.state == "connected" for e in rec.of(ev.PlatformStatus)
        ),
        timeout=10,
    )
    try:
        yield gateway, rec
    finally:
        rec.close()
        await gateway.stop()


async def test_a_telegram_user_sees_only_their_own_chat(
    used_home: HomeManifest, tg: FakeTelegram, gateway_on_used_home
) -> None:
    _, rec = gateway_on_used_home
    key = f"telegram:dm:{ALICE}"
    assert any(s.key == key for s in used_home.sessions)
    tg.inject_message(ALICE, "/insights", user_id=ALICE, first_name="Alice")
    await tg.wait_for(lambda: bool(tg.messages_in(ALICE)), timeout=10)
    (reply,) = [m.plain_text for m in tg.messages_in(ALICE)]
    mine = count(default_db_path(used_home.home_path), time.time() - 30 * 86400, key)
    everyone = count(default_db_path(used_home.home_path), time.time() - 30 * 86400)
    assert mine.users and mine.users < everyone.users
    assert reply.startswith("📊 Activity, last 30 days (this chat)")
    for line in figures(mine):
        assert line in reply, (line, reply)
    # Nothing of anyone else: no platform breakdown, no other chat's figures.
    assert "Per platform" not in reply and "discord" not in reply and "api" not in reply
    for line in figures(everyone)[:2]:  # the counts (both may have been active on 2 days)
        assert line not in reply

    tg.inject_message(ALICE, "/insights -3", user_id=ALICE)
    await tg.wait_for(lambda: len(tg.messages_in(ALICE)) == 2)
    assert tg.messages_in(ALICE)[-1].plain_text == USAGE
    # Asking for another platform narrows her own data; it never widens to others'.
    tg.inject_message(ALICE, "/insights --source api", user_id=ALICE)
    await tg.wait_for(lambda: len(tg.messages_in(ALICE)) == 3)
    assert tg.messages_in(ALICE)[-1].plain_text == (
        "No activity in the last 30 days (this chat, api)."
    )


async def test_the_operator_sees_every_chat_per_platform(
    used_home: HomeManifest, gateway_on_used_home
) -> None:
    gateway, rec = gateway_on_used_home
    since = len(rec.events)
    await gateway.runner.handle(
        MessageEvent(text="/insights 2", source=SessionSource("local", "operator"))
    )
    reply = await rec.event(ev.CommandReplied, since=since)
    assert reply.ok and reply.text.startswith("📊 **Activity, last 2 days** (all chats)")
    everyone = count(default_db_path(used_home.home_path), time.time() - 2 * 86400)
    text = reply.text.replace("**", "")
    for line in figures(everyone):
        assert line in text, (line, text)
    top = ", ".join(f"{n} {c:,}" for n, c in everyone.tools.most_common(8)).replace(", ", " · ")
    assert f"Top tools: {top}" in text
    for platform, messages in everyone.platforms.items():
        assert f"- {platform}: " in text and f"{messages:,} messages" in text
    assert {"local", "telegram", "discord", "api"} <= set(everyone.platforms)
