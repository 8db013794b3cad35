"""Pairing through the real Telegram adapter and FakeTelegram, answered in code.

Why: this is the stranger's whole path: a DM from someone unknown never reaches the agent
but earns a copyable code and one line on what happens next; the operator's approval tells
them they are in and opens the door; revoking closes it again. Groups never see codes, the
``ignore`` mode stays silent, and neither codes nor raw ids appear in our logs.
(The same flow decided in the TUI dialog is in tests/tui/test_pairing_tui.py.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from hermes_gateway.access.events import PairingRequested, PairingResolved
from hermes_gateway.access.pairing import ALPHABET, InvalidCode
from hermes_gateway.access.pairing_gate import APPROVED_TEXT
from hermes_gateway.access.policy import hash_id
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.pairing_harness import (
    FRIEND,
    STRANGER,
    PairingHarness,
    pairing_config,
    user_texts,
)

GROUP = -100777


@pytest.fixture
async def h(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> AsyncIterator[PairingHarness]:
    harness = await PairingHarness.start(
        pairing_config(hermes_home, fake_openai, tg, TELEGRAM_ALLOWED_USERS=str(FRIEND)), tg
    )
    yield harness
    await harness.stop()


async def test_code_approval_lets_a_stranger_in_and_revoke_shuts_them_out(
    h: PairingHarness, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        h.tg.inject_message(STRANGER, "hello?", user_id=STRANGER, first_name="Mallory")
        code = await h.code_sent_to(STRANGER)
        assert len(code) == 8 and set(code) <= set(ALPHABET)
        (offer,) = h.texts(STRANGER)
        assert offer.splitlines()[1].startswith("Send it to the person who runs this bot")
        (asked,) = h.rec.of(PairingRequested)
        assert (asked.platform, asked.user_id, asked.user_name, asked.chat_id, asked.code) == (
            "telegram",
            str(STRANGER),
            "Mallory",
            str(STRANGER),
            code,
        )
        assert fake_openai.requests == []

        with pytest.raises(InvalidCode):
            await h.gate.approve_code("telegram", "AAAA2222" if code != "AAAA2222" else "BBBB3333")
        await h.gate.approve_code("telegram", code.lower())
        await h.message_to(STRANGER, "You're in")
        assert h.texts(STRANGER)[-1] == APPROVED_TEXT
        (resolved,) = h.rec.of(PairingResolved)
        assert (resolved.decision, resolved.by, resolved.user_id) == ("approved", "tui", "991")

        h.tg.inject_message(STRANGER, "now may I?", user_id=STRANGER)
        await h.answered(1)
        assert user_texts(fake_openai) == ["now may I?"]
        assert h.texts(STRANGER)[-1] == "echo: now may I?"

        assert await h.gate.revoke("telegram", str(STRANGER))
        h.tg.inject_message(STRANGER, "still there?", user_id=STRANGER)
        # Shut out again; a new code cannot be issued within 10 minutes of the last, and
        # the stranger is told so once.
        await h.message_to(STRANGER, "No new pairing code can be issued yet")
        mark = len(h.rec.events)
        h.tg.inject_message(STRANGER, "hello??", user_id=STRANGER)
        await h.rec.event(ev.AccessDenied, lambda e: e.user == hash_id(str(STRANGER)), since=mark)
        assert len(fake_openai.requests) == 1
        assert h.texts(STRANGER)[-1].startswith("No new pairing code")
        assert sum("No new pairing code" in t for t in h.texts(STRANGER)) == 1
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hermes_gateway"))
    assert code not in ours and code.lower() not in ours
    assert hash_id(str(STRANGER)) in ours
    assert str(STRANGER) not in ours.replace(hash_id(str(STRANGER)), "")


async def test_groups_never_get_codes_and_pairing_opens_dms_only(
    h: PairingHarness, fake_openai: FakeOpenAI
) -> None:
    await h.gate.approve_user("telegram", str(STRANGER))
    h.tg.inject_message(
        GROUP,
        "@hermes_test_bot hi all",
        user_id=STRANGER,
        chat_type="supergroup",
        chat_title="Crew",
    )
    h.tg.inject_message(GROUP, "@hermes_test_bot me too", user_id=555, chat_type="supergroup")
    h.tg.inject_message(GROUP, "@hermes_test_bot it's me", user_id=FRIEND, chat_type="supergroup")
    await h.answered(1)
    await h.rec.event(ev.AccessDenied, lambda e: e.user == hash_id("555"))
    assert user_texts(fake_openai) == ["it's me"]
    assert h.texts(GROUP) == ["echo: it's me"]
    assert h.rec.of(PairingRequested) == []


async def test_when_no_code_can_be_issued_the_user_is_told_once(
    h: PairingHarness, fake_openai: FakeOpenAI
) -> None:
    for user in (101, 102, 103):
        h.tg.inject_message(user, "hi", user_id=user)
        await h.code_sent_to(user)
    h.tg.inject_message(104, "hi", user_id=104)
    refusal = await h.message_to(104, "too many requests are waiting")
    assert "No pairing code can be issued right now" in refusal.plain_text
    mark = len(h.rec.events)
    h.tg.inject_message(104, "hi again", user_id=104)
    h.tg.inject_message(101, "and me?", user_id=101)
    await h.message_to(101, "waiting for the operator's approval")
    # Published after any reply to the sender was sent: once here, a second refusal is too.
    await h.rec.event(ev.AccessDenied, lambda e: e.user == hash_id("104"), since=mark)
    assert len(h.tg.messages_in(104)) == 1
    assert len(h.rec.of(PairingRequested)) == 3
    assert fake_openai.requests == []


async def test_ignore_mode_stays_silent(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    config = pairing_config(hermes_home, fake_openai, tg)
    config.platforms.telegram.unauthorized_dm = "ignore"
    h = await PairingHarness.start(config, tg)
    await assert_stranger_ignored(h, fake_openai)


async def test_hermes_agents_top_level_unauthorized_dm_behavior(
    hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    """A Hermes Agent config.yaml's ``unauthorized_dm_behavior: ignore`` silences strangers
    on every platform that does not say otherwise."""
    (hermes_home / "config.yaml").write_text("unauthorized_dm_behavior: ignore\n")
    h = await PairingHarness.start(pairing_config(hermes_home, fake_openai, tg), tg)
    await assert_stranger_ignored(h, fake_openai)


async def test_codes_expire_and_the_request_is_dropped(h: PairingHarness) -> None:
    h.tg.inject_message(STRANGER, "hello?", user_id=STRANGER)
    code = await h.code_sent_to(STRANGER)
    manager = h.gate.manager
    real = manager.clock
    manager.clock = lambda: real() + 3601
    await h.gate.sync()
    (expired,) = h.rec.of(PairingResolved)
    assert (expired.decision, expired.user_id) == ("expired", str(STRANGER))
    with pytest.raises(InvalidCode):
        await h.gate.approve_code("telegram", code)


async def test_a_denied_stranger_stays_out_and_cannot_ask_again_at_once(
    h: PairingHarness, fake_openai: FakeOpenAI
) -> None:
    h.tg.inject_message(STRANGER, "hello?", user_id=STRANGER)
    code = await h.code_sent_to(STRANGER)
    assert await h.gate.deny("telegram", str(STRANGER))
    (denied,) = h.rec.of(PairingResolved)
    assert (denied.decision, denied.by) == ("denied", "tui")
    with pytest.raises(InvalidCode):
        await h.gate.approve_code("telegram", code)
    h.tg.inject_message(STRANGER, "please?", user_id=STRANGER)
    await h.message_to(STRANGER, "No new pairing code can be issued yet")
    assert fake_openai.requests == [] and len(h.rec.of(PairingRequested)) == 1


async def assert_stranger_ignored(h: PairingHarness, fake_openai: FakeOpenAI) -> None:
    """A stranger's DM is refused without a word back, a pairing request or a model call."""
    try:
        h.tg.inject_message(STRANGER, "hello?", user_id=STRANGER)
        denied = await h.rec.event(ev.AccessDenied)
        assert denied.user == hash_id(str(STRANGER))
        assert h.tg.messages_in(STRANGER) == []
        assert h.rec.of(PairingRequested) == [] and fake_openai.requests == []
    finally:
        await h.stop()
