"""Groups: each participant of a Telegram group or a Discord channel has a session of their
own (``group_sessions_per_user``, Hermes Agent's default), unless configured shared.

Why: a group shared one conversation, so everything one member told the bot was in the
context of every other member's answers, and /new, /title, /resume of one changed the
session of all. Real adapters against the fakes; what reached the model is read off the fake
model's requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.models import key_user
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.homes import HomeManifest
from tests.integration.test_discord_harness import ALICE, BOB, CHANNEL, discord_gateway
from tests.integration.test_telegram_adapter import (
    GROUP,
    Harness,
    start_gateway,
    telegram_config,
)

ANN: dict[str, Any] = {
    "chat_type": "supergroup",
    "user_id": 7,
    "first_name": "Ann",
    "chat_title": "Team",
}
BEN: dict[str, Any] = {
    "chat_type": "supergroup",
    "user_id": 8,
    "first_name": "Ben",
    "chat_title": "Team",
}


def said(request: dict[str, Any]) -> list[str]:
    """What the users said in the context one model request carried."""
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


async def group_harness(home: Path, openai: FakeOpenAI, tg: FakeTelegram, **env: str) -> Harness:
    h = await start_gateway(telegram_config(home, openai, tg, **env), tg)
    h.adapter.settings.require_mention = False  # every group message is for the bot
    return h


async def reply_to(h: Harness, text: str, who: dict[str, Any]) -> str:
    """Send a command into the group and return the bot's reply to it."""
    before = len(h.texts(GROUP))
    h.tg.inject_message(GROUP, text, **who)
    await h.tg.wait_for(lambda: len(h.texts(GROUP)) > before)
    return h.texts(GROUP)[-1]


async def test_two_members_of_a_telegram_group_have_separate_histories(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    h = await group_harness(hermes_home, fake_openai, tg)
    try:
        h.tg.inject_message(GROUP, "my locker code is walrus", **ANN)
        await h.answered(1)
        h.tg.inject_message(GROUP, "what is Ann's locker code?", **BEN)
        await h.answered(2)
        h.tg.inject_message(GROUP, "and mine again?", **ANN)
        await h.answered(3)
        ann_first, ben, ann_again = fake_openai.requests
        assert said(ben) == ["what is Ann's locker code?"]  # nothing of Ann's reached Ben's
        assert said(ann_again) == ["my locker code is walrus", "and mine again?"]
        keys = {e.session_key for e in h.rec.of(ev.SessionChanged)}
        assert keys == {f"telegram:group:{GROUP}:@7", f"telegram:group:{GROUP}:@8"}
        assert h.gw.runner is not None
        runtimes = h.gw.runner.sessions
        # The Sessions list names whose session it is.
        shown = {e.display_name for e in h.rec.of(ev.SessionChanged)}
        assert shown == {"Team · Ann", "Team · Ben"}
        assert runtimes[f"telegram:group:{GROUP}:@7"].record.display_name == "Team · Ann"
        # The system prompt says who is talking, in which group.
        system = ann_first["messages"][0]["content"]
        assert "You are talking with Ann in Team via telegram." in system
        # Answers still go to the group (in reply order).
        assert h.texts(GROUP) == [
            "echo: my locker code is walrus",
            "echo: what is Ann's locker code?",
            "echo: and mine again?",
        ]
    finally:
        await h.stop()


async def test_commands_in_a_group_act_on_the_callers_own_session(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    h = await group_harness(hermes_home, fake_openai, tg)
    try:
        h.tg.inject_message(GROUP, "plans for the launch", **ANN)
        h.tg.inject_message(GROUP, "lunch order", **BEN)
        await h.answered(2)
        assert h.gw.runner is not None
        ann_key, ben_key = f"telegram:group:{GROUP}:@7", f"telegram:group:{GROUP}:@8"
        ben_id = h.gw.runner.sessions[ben_key].record.id
        assert "Title set" in await reply_to(h, "/title Launch secrets", ANN)
        # Ben's /sessions lists his own session only; Ann's title is not his to resume.
        listing = await reply_to(h, "/sessions", BEN)
        assert "Launch secrets" not in listing and "lunch order" in listing
        refused = await reply_to(h, "/resume Launch secrets", BEN)
        assert refused.startswith("No session named") and ann_key not in refused
        assert "Launch secrets" not in await reply_to(h, "/title", BEN)
        # Ann's /new starts a new session for Ann; Ben's stays where it was.
        ann_old = h.gw.runner.sessions[ann_key].record.id
        assert "New session" in await reply_to(h, "/new", ANN)
        assert h.gw.runner.sessions[ann_key].record.id != ann_old
        assert h.gw.runner.sessions[ben_key].record.id == ben_id
        # ...and /resume brings Ann her own earlier session back.
        assert "Resumed" in await reply_to(h, "/resume Launch secrets", ANN)
        assert h.gw.runner.sessions[ann_key].record.id == ann_old
        h.tg.inject_message(GROUP, "where were we?", **ANN)
        await h.answered(3)
        assert said(fake_openai.requests[-1]) == ["plans for the launch", "where were we?"]
    finally:
        await h.stop()


async def test_shared_group_sessions_when_configured(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    (hermes_home / "config.yaml").write_text("gateway:\n  group_sessions_per_user: false\n")
    h = await group_harness(hermes_home, fake_openai, tg)
    try:
        assert h.gw.config.group_sessions_per_user is False
        h.tg.inject_message(GROUP, "my locker code is walrus", **ANN)
        await h.answered(1)
        h.tg.inject_message(GROUP, "what is Ann's locker code?", **BEN)
        await h.answered(2)
        assert said(fake_openai.requests[-1]) == [
            "my locker code is walrus",
            "what is Ann's locker code?",
        ]
        assert {e.session_key for e in h.rec.of(ev.SessionChanged)} == {f"telegram:group:{GROUP}"}
    finally:
        await h.stop()


async def test_topics_are_shared_unless_thread_sessions_per_user(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    topic: dict[str, Any] = {"message_thread_id": 3, "is_topic_message": True}
    h = await group_harness(hermes_home, fake_openai, tg)
    try:
        h.tg.inject_message(GROUP, "topic idea", **ANN, **topic)
        await h.answered(1)
        h.tg.inject_message(GROUP, "seconded", **BEN, **topic)
        await h.answered(2)
        assert said(fake_openai.requests[-1]) == ["topic idea", "seconded"]  # shared
    finally:
        await h.stop()
    fake_openai.requests.clear()
    (hermes_home / "config.yaml").write_text("thread_sessions_per_user: true\n")
    h = await group_harness(hermes_home, fake_openai, tg)
    try:
        h.tg.inject_message(GROUP, "only mine", **BEN, **topic)
        await h.answered(1)
        assert said(fake_openai.requests[-1]) == ["only mine"]
        keys = {e.session_key for e in h.rec.of(ev.SessionChanged)}
        assert keys == {f"telegram:group:{GROUP}:3:@8"}
    finally:
        await h.stop()


async def test_two_members_of_a_discord_channel_have_separate_histories(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with discord_gateway(
        hermes_home, fake_openai, DISCORD_ALLOWED_USERS=f"{ALICE},{BOB}"
    ) as h:
        await h.post(CHANNEL, "the vault opens with 1234", user=ALICE, mention=True)
        assert await h.wait_answers(CHANNEL, 1) == ["echo: the vault opens with 1234"]
        await h.post(CHANNEL, "how does the vault open?", user=BOB, mention=True)
        await h.wait_answers(CHANNEL, 2)
        assert said(fake_openai.requests[-1]) == ["how does the vault open?"]
        assert {key_user(k) for k in h.runner.sessions} == {str(ALICE), str(BOB)}
        # Bob cannot reach Alice's session by its id either.
        alice = h.runner.sessions[f"discord:channel:{CHANNEL}:@{ALICE}"]
        await h.post(CHANNEL, f"/resume {alice.record.id}", user=BOB, mention=True)
        assert (await h.wait_answers(CHANNEL, 3))[-1].startswith("No session named")
        assert h.runner.sessions[f"discord:channel:{CHANNEL}:@{BOB}"].record.id != alice.record.id


async def test_a_used_homes_shared_group_session_stays_readable_and_comes_back_if_shared(
    used_home: HomeManifest, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    old_key = next(k for k in used_home.chats if k.startswith("telegram:group:"))
    old = used_home.active(old_key)
    group = int(old_key.split(":")[2])
    alice: dict[str, Any] = {"chat_type": "supergroup", "user_id": 1001, "first_name": "Alice"}
    env = {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_BASE_URL": tg.base_url,
        "TELEGRAM_BASE_FILE_URL": tg.base_file_url,
        "GATEWAY_ALLOW_ALL_USERS": "true",
    }
    home = used_home.home_path
    config = make_config(home, fake_openai, **env)
    h = await start_gateway(config, tg)
    try:
        h.adapter.settings.require_mention = False
        h.tg.inject_message(group, "a fresh question", **alice)
        await h.answered(1)
        # Alice now has her own session: the group's history from before is not in it.
        assert said(fake_openai.requests[-1]) == ["a fresh question"]
        assert h.gw.runner is not None
        assert f"{old_key}:@1001" in h.gw.runner.sessions
        # The old shared session is still there, readable and searchable.
        assert h.gw.operator is not None
        view = await h.gw.operator.select(old_key)
        assert view.record is not None and view.record.id == old.id
        assert len(view.messages) == old.messages
        word = next((m.content or "").split()[-1] for m in view.messages if m.role == "user")
        hits = await h.gw.operator.search(word)
        assert old.id in {hit.session_id for hit in hits}
    finally:
        await h.stop()
    # Configured shared again: the group's messages land in its old session once more.
    fake_openai.requests.clear()
    config = make_config(home, fake_openai, **env)
    config.group_sessions_per_user = False
    h = await start_gateway(config, tg)
    try:
        h.adapter.settings.require_mention = False
        h.tg.inject_message(group, "back together", **alice)
        await h.answered(1)
        assert h.gw.runner is not None
        assert h.gw.runner.sessions[old_key].record.id == old.id
        assert said(fake_openai.requests[-1])[-1] == "back together"
        assert len(said(fake_openai.requests[-1])) > 1  # the old shared history came along
    finally:
        await h.stop()
