"""The Telegram adapter's own guards against hostile updates, through the real gateway.

Why these tests: the runner's access check sees only what the adapter made of an update. A
chat id sent as the string ``"07"`` becomes chat 7 once something calls ``int()`` on it, so
with allow-all (or a lenient policy) a forged update would get someone else's chat answered;
the adapter must refuse such updates itself. And a file is fetched before the runner ever
sees the message, so the adapter must ask the access policy first, or any stranger can make
the bot download 20 MB files at will.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.access.events import PairingRequested
from hermes_gateway.platforms.telegram.inbound import screen_batch
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.pairing_harness import (
    FRIEND,
    STRANGER,
    PairingHarness,
    pairing_config,
    user_texts,
)
from tests.integration.test_telegram_adapter import (
    DM,
    GROUP,
    start_gateway,
    telegram_config,
    updates_handled,
)

NOW = int(time.time())
JPEG = b"\xff\xd8\xff\xe0" + b"fake-jpeg-bytes" * 10


def dm(update_id: int, chat_id: Any, user_id: Any, **extra: Any) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": NOW,
            "chat": {"id": chat_id, "type": "private", "first_name": "Eve"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Eve"},
            "text": "hi",
            **extra,
        },
    }


FORGED = [
    dm(7001, "07", "07"),
    dm(7002, "7 ", "7 "),
    dm(7003, "７", "７"),  # a full-width digit seven
    dm(7004, 7, 666),  # chat 7 is user 7's private chat; user 666 cannot be writing in it
    dm(7005, 7, True),
    {"update_id": 7006, "message": {**dm(0, 7, 7)["message"], "from": None}},
    {
        "update_id": 7007,
        "message": {
            "message_id": 1,
            "date": NOW,
            "chat": {"id": GROUP, "type": "supergroup", "title": "g", "is_forum": True},
            "from": {"id": 1000, "is_bot": False, "first_name": "Eve"},
            "message_thread_id": "05",
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    },
]


async def test_lookalike_and_forged_ids_are_refused_by_the_adapter(
    hermes_home: Path, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hermes_gateway.platforms.telegram.inbound")
    async with FakeTelegram() as tg:
        # Everyone is allowed, so only the adapter stands between these updates and chat 7.
        h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
        try:
            for update in FORGED:
                tg.inject_update(update)
            tg.inject_message(DM, "ping")
            await h.answered(1)
            await updates_handled(h.gw, tg)  # the refusals happen in the adapter: no event
            assert [e.text for e in h.rec.of(ev.MessageReceived)] == ["ping"]
            assert h.rec.of(ev.CommandReplied) == []
            assert tg.messages_in(7) == [] and tg.messages_in(GROUP) == []
            assert h.texts(DM) == ["echo: ping"]
            refused = [
                r.getMessage() for r in caplog.records if "ignoring Telegram" in r.getMessage()
            ]
            assert [m.split()[3] for m in refused] == [f"{u['update_id']}:" for u in FORGED]
            assert sum("not an integer" in m for m in refused) == 5
            assert sum("not its sender's" in m for m in refused) == 2
        finally:
            await h.stop()


async def test_files_of_unauthorised_senders_are_never_fetched(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeTelegram() as tg:
        config = pairing_config(
            hermes_home,
            fake_openai,
            tg,
            TELEGRAM_ALLOWED_USERS=str(FRIEND),
            TELEGRAM_REQUIRE_MENTION="true",
        )
        h = await PairingHarness.start(config, tg)
        try:
            tg.add_file("BIG", JPEG, "photos/big.jpg")
            tg.add_file("DOC", b"secret", "documents/x.bin")
            tg.add_file("MINE", JPEG + b"!", "photos/mine.jpg")
            # A stranger's photo with a caption, and a bare document: neither is fetched,
            # but the stranger is still offered a pairing code (their message got through).
            tg.inject_message(STRANGER, photo_file_id="BIG", caption="look", user_id=STRANGER)
            await h.rec.wait_for(lambda: len(h.rec.of(PairingRequested)) == 1)
            tg.inject_message(
                STRANGER, document={"file_id": "DOC", "file_name": "x.bin"}, user_id=STRANGER
            )
            # The allowed user's photo in a group, not addressed to the bot: not fetched either.
            tg.inject_message(GROUP, photo_file_id="MINE", chat_type="supergroup", user_id=FRIEND)
            # The allowed user's own photo in their DM is fetched and reaches the model.
            tg.inject_message(FRIEND, photo_file_id="MINE", caption="and this?", user_id=FRIEND)
            await h.answered(1)
            assert tg.pending_updates == 0
            fetched = [params["file_id"] for method, params in tg.calls if method == "getFile"]
            assert fetched == ["MINE"]
            [content] = user_texts(fake_openai)
            assert content[0] == {"type": "text", "text": "and this?"}
            assert content[1]["type"] == "image_url"
            saved = await asyncio.to_thread(
                lambda: sorted(p.name for p in (hermes_home / "media").rglob("*") if p.is_file())
            )
            assert len(saved) == 1
        finally:
            await h.stop()


def test_screen_batch_keeps_good_answers_byte_for_byte_and_drops_what_cannot_be_confirmed() -> None:
    good = json.dumps({"ok": True, "result": [dm(1, 5, 5)]}).encode()
    assert screen_batch(good) is good  # the usual case costs no re-encoding
    error = b'{"ok": false, "error_code": 409, "description": "Conflict"}'
    assert screen_batch(error) is error
    assert screen_batch(b"<html>bad gateway</html>") == b"<html>bad gateway</html>"
    no_date = dm(3, 5, 5)
    del no_date["message"]["date"]
    mixed = {"ok": True, "result": [dm(1, 5, 5), {"update_id": "2"}, no_date, ["x"], dm(4, 5, 5)]}
    screened = json.loads(screen_batch(json.dumps(mixed).encode()))
    assert screened["result"] == [dm(1, 5, 5), {"update_id": 3}, dm(4, 5, 5)]
