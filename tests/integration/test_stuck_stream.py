"""A streamed answer whose message the platform stops editing, on the real libraries.

Why: a message a moderator deleted, or one Telegram/Discord no longer lets us edit, used to
keep its " ▌" cursor forever, the rest went on mid-word, and a deleted part was never sent
again. What the chat finally shows is checked exactly: no cursor anywhere, every message
ending where a word ends, the answer complete and nothing in it twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.test_discord_harness import DM_ALICE, discord_gateway
from tests.integration.test_telegram_adapter import (
    DM,
    Harness,
    start_gateway,
    telegram_config,
)

ANSWER = " ".join(
    f"Step {i} of the plan is written out here in a full sentence." for i in range(30)
)


def assert_clean_cover(texts: list[str], answer: str) -> None:
    """No cursor; each message ends where a word ends; together exactly the answer."""
    assert not any("▌" in t for t in texts), texts
    pos = 0
    for t in texts:
        at = answer.find(t, pos)
        assert at >= 0 and not answer[pos:at].strip(), (pos, at, t[:50])
        pos = at + len(t)
        assert pos == len(answer) or answer[pos].isspace(), f"ends mid-word: {t[-30:]!r}"
    assert pos == len(answer), "the end of the answer is missing"


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI, tg: FakeTelegram) -> AsyncIterator[Harness]:
    harness = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
    yield harness
    await harness.stop()


def visible(h: Harness) -> list[str]:
    return [m.plain_text for m in h.tg.messages_in(DM) if not m.deleted]


async def test_telegram_message_that_cannot_be_edited_is_finished_cleanly(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ScriptedReply(text=ANSWER, chunk_size=25, delay=0.01))
    h.tg.fail_next(
        "editMessageText", status=400, description="Bad Request: message can't be edited"
    )
    h.tg.inject_message(DM, "plan please")
    await h.answered(1)
    texts = visible(h)
    assert len(texts) >= 2, "the answer went on in a new message"
    assert_clean_cover(texts, ANSWER)
    assert len(h.tg.messages_in(DM)) == len(texts)


async def test_telegram_message_deleted_mid_stream_is_sent_again(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ScriptedReply(text=ANSWER, chunk_size=25, delay=0.02))
    h.tg.inject_message(DM, "plan please")
    await h.tg.wait_for(lambda: bool(h.tg.messages_in(DM)) and bool(h.tg.messages_in(DM)[0].edits))
    first = h.tg.messages_in(DM)[0]
    h.tg.delete_as_moderator(DM, first.message_id)
    await h.answered(1)
    assert visible(h) == [ANSWER], "the deleted part came back, once, and no cursor is left"
    assert len(h.tg.messages_in(DM)) == 2


async def test_discord_message_deleted_mid_stream_is_sent_again(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=ANSWER, chunk_size=25, delay=0.02))
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm("plan please")
        await h.fake.wait_for(
            lambda: bool(h.messages(DM_ALICE)) and bool(h.messages(DM_ALICE)[0].edits)
        )
        h.fake.delete_as_moderator(h.messages(DM_ALICE)[0].message_id)
        await h.fake.wait_for(lambda: len(h.messages(DM_ALICE)) >= 2)
        await h.runner.wait_idle(5.0)
        assert h.answers(DM_ALICE) == [ANSWER]


async def test_discord_message_that_cannot_be_edited_is_finished_cleanly(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=ANSWER, chunk_size=25, delay=0.01))
    async with discord_gateway(hermes_home, fake_openai) as h:
        h.fake.fail_next(
            "PATCH", r"/channels/\d+/messages/\d+", status=400, code=30046, message="Too old"
        )
        await h.dm("plan please")
        await h.fake.wait_for(lambda: len(h.messages(DM_ALICE)) >= 2)
        await h.runner.wait_idle(5.0)
        assert_clean_cover(h.answers(DM_ALICE), ANSWER)
