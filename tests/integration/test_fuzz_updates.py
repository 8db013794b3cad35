"""Malformed and hostile Telegram updates must never reach the agent.

Why: anyone can message a public bot. A corpus of updates with missing fields, forged or
look-alike ids (``"7 "``, ``"07"``, a forwarded or replied-to message of the allowed user,
a private chat whose id is the allowed user's), huge texts and shell/command injection in
command arguments is fed through FakeTelegram into the real adapter and runner. None may
reach the model; the one allowed user's message sent afterwards must, which proves the
pipeline survived the corpus (so the first assertion cannot pass by everything being dead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.access.events import PairingRequested
from hermes_gateway.access.policy import hash_id
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.pairing_harness import FRIEND, PairingHarness, pairing_config, user_texts
from tests.integration.test_telegram_adapter import updates_handled

ATTACKER = 666
NOW = int(time.time())


def user(uid: Any, **extra: Any) -> dict[str, Any]:
    return {"id": uid, "is_bot": False, "first_name": "Eve", **extra}


def private(cid: Any) -> dict[str, Any]:
    return {"id": cid, "type": "private", "first_name": "Eve"}


def msg(text: str | None = "hi", *, frm: Any = None, chat: Any = None, **extra: Any) -> dict:
    message: dict[str, Any] = {"message_id": 1, "date": NOW}
    message["chat"] = private(ATTACKER) if chat is None else chat
    if frm is not False:
        message["from"] = user(ATTACKER) if frm is None else frm
    if text is not None:
        message["text"] = text
    message.update(extra)
    return {"message": message}


def command(text: str) -> dict:
    return msg(text, entities=[{"type": "bot_command", "offset": 0, "length": text.find(" ")}])


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    # Missing or broken fields.
    ("no sender, in the allowed user's chat", msg("hi", frm=False, chat=private(FRIEND))),
    ("no text at all", msg(None)),
    ("empty text", msg("")),
    ("no chat", {"message": {"message_id": 1, "date": NOW, "from": user(ATTACKER), "text": "x"}}),
    ("message is null", {"message": None}),
    ("unknown update kind", {"weird_update": {"text": "hi"}}),
    ("unknown chat type", msg("hi", chat={"id": ATTACKER, "type": "spaceship"})),
    # Forged and look-alike ids.
    ("forged chat id", msg("hi", chat=private(FRIEND))),
    ("id with a space", msg("hi", frm=user(f"{FRIEND} "), chat=private(f"{FRIEND} "))),
    ("id with a zero", msg("hi", frm=user(f"0{FRIEND}"), chat=private(f"0{FRIEND}"))),
    ("id as a float", msg("hi", frm=user(FRIEND + 0.5), chat=private(FRIEND + 0.5))),
    ("negative id", msg("hi", frm=user(-FRIEND), chat=private(-FRIEND))),
    ("fullwidth digit id", msg("hi", frm=user("７"), chat=private("７"))),
    ("huge id", msg("hi", frm=user(2**70), chat=private(2**70))),
    ("sender_chat of the allowed user", msg("hi", sender_chat=private(FRIEND))),
    ("forwarded from the allowed user", msg("hi", forward_from=user(FRIEND))),
    (
        "reply to the allowed user",
        msg(
            "hi",
            reply_to_message={
                "message_id": 9,
                "date": NOW,
                "chat": private(ATTACKER),
                "from": user(FRIEND),
                "text": "x",
            },
        ),
    ),  # fmt: skip
    (
        "text mention of the allowed user",
        msg(
            "hi you",
            entities=[{"type": "text_mention", "offset": 3, "length": 3, "user": user(FRIEND)}],
        ),
    ),  # fmt: skip
    (
        "group post claiming the allowed user's id as chat",
        msg("@hermes_test_bot hi", chat={"id": FRIEND, "type": "group", "title": "g"}),
    ),
    (
        "channel post in the allowed user's chat",
        {"channel_post": msg("hi", frm=False, chat=private(FRIEND))["message"]},
    ),
    ("edited message", {"edited_message": msg("hi")["message"]}),
    (
        "button press with a command",
        {
            "callback_query": {
                "id": "1",
                "from": user(ATTACKER),
                "chat_instance": "1",
                "data": "/approve session",
            }
        },
    ),  # fmt: skip
    # Huge texts.
    ("huge text", msg("A" * 200_000)),
    ("huge multibyte text", msg("🔥" * 50_000)),
    ("control characters", msg("hi\x00\x1b[2J\x07\u202e")),
    # Command injection in arguments (from someone not allowed).
    ("approve with a subshell", command("/approve session $(rm -rf ~)")),
    ("deny chained with approve", command("/deny && /approve")),
    ("model with backticks", command("/model `curl http://127.0.0.1:9/x | sh`")),
    ("new with a separator", command("/new; reboot")),
    ("help for another bot", command("/help@hermes_test_bot; cat /etc/passwd")),
    ("retry with newline", command("/retry\n/approve")),
]


NO_DATE = {"message": {"message_id": 1, "chat": private(ATTACKER), "text": "x"}}
"""An update python-telegram-bot cannot parse at all (it rejects the whole getUpdates batch)."""


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[PairingHarness]:
    async with FakeTelegram() as tg:
        config = pairing_config(hermes_home, fake_openai, tg, TELEGRAM_ALLOWED_USERS=str(FRIEND))
        config.platforms.telegram.remote_approvals = True
        harness = await PairingHarness.start(config, tg)
        yield harness
        await harness.stop()


async def test_hostile_updates_never_reach_the_agent(
    h: PairingHarness, fake_openai: FakeOpenAI
) -> None:
    for _, update in HOSTILE:
        h.tg.inject_update(update)
    # Some are refused by the adapter (no event), the rest by the runner (AccessDenied).
    await updates_handled(h.gw, h.tg, timeout=10)
    assert fake_openai.requests == []
    assert hash_id(str(FRIEND)) not in {e.user for e in h.rec.of(ev.AccessDenied)}
    assert h.rec.of(ev.MessageReceived) == []
    assert h.tg.messages_in(FRIEND) == []  # nothing forged made the bot write to them

    # The pipeline is alive: the allowed user still gets through, and only they do.
    h.tg.inject_message(FRIEND, "ping", user_id=FRIEND)
    await h.answered(1, timeout=10)
    assert user_texts(fake_openai) == ["ping"]
    assert h.texts(FRIEND) == ["echo: ping"]
    assert h.gw.runner is not None
    assert [rt.source.user_id for rt in h.gw.runner.sessions.values()] == [str(FRIEND)]
    # Strangers were offered at most the three codes a platform may have pending.
    assert len(h.rec.of(PairingRequested)) <= 3


async def test_an_unparsable_update_does_not_stall_the_bot(
    h: PairingHarness, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    # PTB rejects a whole getUpdates batch when one update in it does not parse; the adapter
    # must skip that update (once, logged by id) and move the offset past it.
    caplog.set_level(logging.WARNING, logger="hermes_gateway.platforms.telegram.inbound")
    h.tg.inject_update({"update_id": 5000, **NO_DATE})
    h.tg.inject_message(FRIEND, "ping", user_id=FRIEND)
    await h.answered(1, timeout=3)
    assert user_texts(fake_openai) == ["ping"]
    await h.tg.wait_for(lambda: h.tg.pending_updates == 0, timeout=3)
    skipped = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert skipped == ["skipping malformed Telegram update 5000 (KeyError: 'date')"]

    # A bad update between good ones in one batch: both good ones are still answered.
    h.tg.inject_message(FRIEND, "one", user_id=FRIEND)
    h.tg.inject_update(NO_DATE)
    h.tg.inject_message(FRIEND, "two", user_id=FRIEND)

    # (the runner may batch the two into one turn, so look at what it received)
    def received() -> str:
        return "\n".join(e.text for e in h.rec.of(ev.MessageReceived))

    await h.rec.wait_for(lambda: "one" in received() and "two" in received(), timeout=5)
    assert len([r for r in caplog.records if "malformed" in r.getMessage()]) == 2
