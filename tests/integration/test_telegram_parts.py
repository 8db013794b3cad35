"""The Telegram adapter's smaller parts: menu rules, backoff, addresses, error mapping, media.

Why: these are the rules Telegram enforces (command names, description lengths) or that keep
the gateway well-behaved (backoff with jitter and a cap, errors mapped to what delivery
understands, user file names that cannot escape the media folder). Error mapping is checked
against the fake server through the real python-telegram-bot, so PTB's own error texts are
what is matched.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot
from telegram.error import RetryAfter as TgRetryAfter

from hermes_gateway.backoff import Backoff
from hermes_gateway.commands.registry import CommandResult, CommandSpec
from hermes_gateway.delivery import (
    EditFailed,
    FormattingRejected,
    MessageNotModified,
    RetryAfter,
)
from hermes_gateway.media import build_user_content, save_media
from hermes_gateway.platforms.telegram.commands import bot_commands
from hermes_gateway.platforms.telegram.transport import (
    ChatTarget,
    TelegramTransport,
    retry_after_seconds,
)
from hermes_gateway.store.records import StoredMessage
from tests.fakes.telegram_server import FakeTelegram


async def _noop(ctx: object) -> CommandResult:
    return CommandResult("")


def test_bot_menu_follows_telegrams_rules() -> None:
    specs = [
        CommandSpec("set-model", "Switch   the\nmodel", _noop),
        CommandSpec("x", "ok", _noop),
        CommandSpec("long", "d" * 300, _noop),
        CommandSpec("Bad!Name", "never shown", _noop),
        CommandSpec("n" * 33, "too long a name", _noop),
    ]
    menu = {c.command: c.description for c in bot_commands(specs)}
    assert list(menu) == ["set_model", "x", "long"]
    assert menu["set_model"] == "Switch the model"
    assert menu["x"] == "Run /x"  # at least 3 characters
    assert len(menu["long"]) == 256 and menu["long"].endswith("…")


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    steady = Backoff(2.0, 300.0, rng=lambda: 0.5)
    assert [steady.next() for _ in range(10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    steady.reset()
    assert steady.next() == 2
    low, high = Backoff(2.0, 300.0, rng=lambda: 0.0), Backoff(2.0, 300.0, rng=lambda: 1.0)
    assert (low.next(), high.next()) == (1.5, 2.5)
    assert max(Backoff(1.0, 300.0, rng=lambda: 1.0).next() for _ in range(20)) <= 300


def test_chat_targets_round_trip() -> None:
    for target in (ChatTarget(42), ChatTarget(-100123, 7), ChatTarget(-100123, 55, topic=False)):
        assert ChatTarget.parse(target.encode()) == target
    assert ChatTarget(-1001, 7).send_kwargs() == {"message_thread_id": 7}
    reply = ChatTarget(-1001, 55, topic=False).send_kwargs()["reply_parameters"]
    assert reply.message_id == 55 and reply.allow_sending_without_reply


def test_retry_after_may_be_seconds_or_a_timedelta() -> None:
    assert retry_after_seconds(TgRetryAfter(3)) == 3.0
    assert retry_after_seconds(TgRetryAfter(dt.timedelta(seconds=1.5))) == 1.5


@pytest.fixture
async def transport() -> AsyncIterator[tuple[FakeTelegram, TelegramTransport]]:
    async with FakeTelegram() as tg:
        async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
            yield tg, TelegramTransport(bot)


async def test_transport_maps_telegram_errors(
    transport: tuple[FakeTelegram, TelegramTransport],
) -> None:
    tg, t = transport
    mid = await t.send_text("42", "hello")
    with pytest.raises(MessageNotModified):
        await t.edit_text("42", mid, "hello")
    with pytest.raises(EditFailed):
        await t.edit_text("42", "999", "gone")
    tg.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 2", retry_after=2
    )
    with pytest.raises(RetryAfter) as caught:
        await t.send_text("42", "again")
    assert caught.value.seconds == 2
    bad = "Bad Request: can't parse entities: unexpected end tag"
    tg.fail_next("sendMessage", status=400, description=bad, times=2)
    with pytest.raises(FormattingRejected):  # refused as HTML and as plain text
        await t.send_text("42", "**x**")
    assert t.measure("😀") == 2


async def test_saved_media_stays_inside_the_media_folder(tmp_path: Path) -> None:
    ref = await save_media(
        tmp_path,
        b"data",
        platform="telegram",
        unique_id="../../etc/AQAD",
        file_name="../../../passwd.txt",
        mime_type="text/plain",
    )
    path = Path(ref.path)
    assert await asyncio.to_thread(path.read_bytes) == b"data"
    assert tmp_path in path.parents and ".." not in path.parts
    assert ref.kind == "document" and path.suffix == ".txt"


async def test_images_become_image_parts_and_files_paths(tmp_path: Path) -> None:
    image = await save_media(tmp_path, b"\xff\xd8jpeg", platform="t", unique_id="I1", kind="image")
    doc = await save_media(tmp_path, b"%PDF", platform="t", unique_id="D1", file_name="a.pdf")
    assert build_user_content("hi", []) == "hi"
    text = build_user_content("read this", [doc])
    assert isinstance(text, str) and text.startswith("read this\n\n[The user attached")
    assert doc.path in text
    parts = build_user_content("what is it?", [image, doc])
    assert isinstance(parts, list)
    assert parts[0]["type"] == "text" and doc.path in parts[0]["text"]
    url = parts[1]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == b"\xff\xd8jpeg"
    # A stored user message carries its files as paths; to_openai rebuilds the parts.
    stored = StoredMessage(role="user", content="again", meta={"media": [image.path]})
    assert stored.to_openai()["content"][1]["type"] == "image_url"
    await asyncio.to_thread(Path(image.path).unlink)
    assert "[The user attached an image file" in stored.to_openai()["content"]


def test_chat_targets_accept_only_plain_numeric_ids():
    from hermes_gateway.platforms.telegram.transport import ChatTarget

    assert ChatTarget.chat_of("123") == 123 and ChatTarget.chat_of("-1001234") == -1001234
    for lookalike in ("０7", "07", "7 ", "@news"):
        assert ChatTarget.chat_of(lookalike) == lookalike  # never silently chat 7
