"""Tests of the fake Telegram Bot API server, driven by the real python-telegram-bot.

Why: the gateway's Telegram tests trust this fake to behave like Telegram. These tests pin
the behaviours they rely on (long polling, error envelopes mapped to PTB exceptions, markup
validation, restarts) using PTB itself as the client, so a drift between the fake and what
PTB sends or expects shows up here first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import warnings
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from tests.fakes.telegram_server import (
    EntityParseError,
    FakeTelegram,
    parse_html,
    parse_markdown_v2,
    utf16_len,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as tg:
        yield tg


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as b:
        yield b


def _retry_after_seconds(exc: RetryAfter) -> int:
    # PTB 22 warns that retry_after will become a timedelta; read it without the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return int(value.total_seconds()) if isinstance(value, dt.timedelta) else int(value)


# ------------------------------------------------------------------ basic methods


async def test_get_me_returns_the_bot_identity(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "hermes_test_bot"
    assert fake.methods_called() == ["getMe", "getMe"]  # initialize() + explicit call


async def test_send_and_edit_record_history(fake: FakeTelegram, bot: Bot) -> None:
    first = await bot.send_message(42, "Hel")
    second = await bot.send_message(42, "other")
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.from_user is not None and first.from_user.id == fake.bot_id
    assert first.chat.id == 42 and first.chat.type == "private"
    edited = await bot.edit_message_text("Hello", chat_id=42, message_id=first.message_id)
    edited = await bot.edit_message_text("Hello world", chat_id=42, message_id=1)
    assert isinstance(edited, type(first))
    assert edited.text == "Hello world"
    assert edited.edit_date is not None
    record = fake.messages_in(42)[0]
    assert record.text == "Hel"
    assert record.edits == ["Hello", "Hello world"]
    assert record.current_text == "Hello world"
    other_chat = await bot.send_message(7, "first in chat 7")
    assert other_chat.message_id == 1  # ids are per chat


async def test_editing_with_same_text_is_not_modified(fake: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_message(42, "<b>same</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is not modified"):
        await msg.edit_text("<b>same</b>", parse_mode="HTML")
    # Different markup that renders the same is also "not modified", as on Telegram.
    with pytest.raises(BadRequest, match="Message is not modified"):
        await msg.edit_text("<strong>same</strong> ", parse_mode="HTML")
    await msg.edit_text("<i>same</i>", parse_mode="HTML")
    assert fake.sent[0].edits == ["<i>same</i>"]


async def test_edit_errors(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=42, message_id=99)
    update = fake.inject_message(42, "user text")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", chat_id=42, message_id=update["message"]["message_id"])
    msg = await bot.send_message(42, "short")
    with pytest.raises(BadRequest, match="Message_too_long"):
        await msg.edit_text("y" * 4097)


async def test_delete_message_and_chat_action(fake: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_message(42, "bye")
    assert await bot.send_chat_action(42, "typing") is True
    assert fake.chat_actions == [(42, "typing")]
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(42, "dancing")
    assert await msg.delete() is True
    assert fake.sent[0].deleted
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await msg.delete()
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await msg.edit_text("too late")


async def test_reply_and_thread_parameters(fake: FakeTelegram, bot: Bot) -> None:
    update = fake.inject_message(-1001, "question", chat_type="supergroup", user_id=5)
    asked = update["message"]["message_id"]
    answer = await bot.send_message(-1001, "answer", reply_to_message_id=asked, message_thread_id=9)
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "question"
    assert answer.message_thread_id == 9
    assert answer.message_id == asked + 1  # one id sequence per chat for both directions
    record = fake.sent[-1]
    assert (record.reply_to_message_id, record.message_thread_id) == (asked, 9)
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(-1001, "x", reply_to_message_id=12345)


async def test_text_length_and_emptiness(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(42, "x" * 4096)
    await bot.send_message(42, "😀" * 2048)  # 4096 UTF-16 code units
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(42, "x" * 4097)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(42, "😀" * 2049)
    # The limit applies after markup is parsed away.
    await bot.send_message(42, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(42, "   \n ")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(42, "<b></b>", parse_mode="HTML")
    assert len(fake.sent) == 3


# ------------------------------------------------------------------ parse modes


async def test_parse_mode_rejection_and_rendering(fake: FakeTelegram, bot: Bot) -> None:
    for bad in ("a < b", "line<br>break", "<b>unclosed", "<b><i>x</b></i>", "fish & chips"):
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await bot.send_message(42, bad, parse_mode="HTML")
    for bad in ("Hello.", "a-b", "*bold", "[link](http://x.y"):
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await bot.send_message(42, bad, parse_mode="MarkdownV2")
    assert fake.sent == []

    html = await bot.send_message(
        42,
        '<b>bold</b> &amp; <a href="https://example.com/?a=1&amp;b=2">link</a> 😀 <i>it</i>',
        parse_mode="HTML",
    )
    assert html.text == "bold & link 😀 it"
    kinds = [(e.type, e.offset, e.length) for e in html.entities]
    assert kinds == [("bold", 0, 4), ("text_link", 7, 4), ("italic", 15, 2)]
    assert html.entities[1].url == "https://example.com/?a=1&b=2"

    md = await bot.send_message(42, "*bold* and \\. `code\\`` ||hid||", parse_mode="MarkdownV2")
    assert md.text == "bold and . code` hid"
    assert [e.type for e in md.entities] == ["bold", "code", "spoiler"]
    assert fake.sent[-1].text == "*bold* and \\. `code\\`` ||hid||"  # raw text is recorded


@pytest.mark.parametrize(
    ("markup", "plain", "entity_types"),
    [
        ("plain &lt;tag&gt; &quot;q&quot; &#33; &#x41;", 'plain <tag> "q" ! A', []),
        ('<pre><code class="language-py">x = 1</code></pre>', "x = 1", ["pre"]),
        ("<blockquote expandable>quote</blockquote>", "quote", ["expandable_blockquote"]),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st", ["spoiler"] * 2),
        (
            "<u>u</u><ins>i</ins><s>s</s><del>d</del>",
            "uisd",
            ["underline"] * 2 + ["strikethrough"] * 2,
        ),
        ("a > b", "a > b", []),
    ],
)
def test_parse_html_accepts(markup: str, plain: str, entity_types: list[str]) -> None:
    text, entities = parse_html(markup)
    assert text == plain
    assert [e["type"] for e in entities] == entity_types


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("ok</b>", "Unexpected end tag at byte offset 2"),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("é <x", "Unclosed start tag at byte offset 3"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("a &nbsp; b", "Character '&'"),
    ],
)
def test_parse_html_rejects(markup: str, error: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse_html(markup)
    assert error in str(info.value)


def test_parse_html_lenient_ampersand_matches_telegram() -> None:
    assert parse_html("fish & chips", strict_ampersand=False) == ("fish & chips", [])


@pytest.mark.parametrize(
    ("markup", "plain", "entity_types"),
    [
        ("___iu_\r__", "iu\r", ["underline", "italic"]),
        ("~s~ __u__ _i_", "s u i", ["strikethrough", "underline", "italic"]),
        ("[site](https://e.com/a_\\)b)", "site", ["text_link"]),
        ("```python\nprint(1)\n```", "print(1)\n", ["pre"]),
        (">quoted\n>more\nafter", "quoted\nmore\nafter", ["blockquote"]),
        ("**>hidden\n>rest||", "hidden\nrest", ["expandable_blockquote"]),
        ("\\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!", "_*[]()~`>#+-=|{}.!", []),
    ],
)
def test_parse_markdown_v2_accepts(markup: str, plain: str, entity_types: list[str]) -> None:
    text, entities = parse_markdown_v2(markup)
    assert text == plain
    assert sorted(e["type"] for e in entities) == sorted(entity_types)


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("v1.2", "Character '.' is reserved"),
        ("a > b", "Character '>' is reserved"),
        ("100%!", "Character '!' is reserved"),
        ("(x)", "Character '(' is reserved"),
        ("*bold _both* x_", "Can't find end of"),
        ("`code", "Can't find end of Code entity at byte offset 0"),
        ("é *b", "Can't find end of Bold entity at byte offset 3"),
    ],
)
def test_parse_markdown_v2_rejects(markup: str, error: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse_markdown_v2(markup)
    assert error in str(info.value)


def test_entity_offsets_are_utf16() -> None:
    text, entities = parse_html("😀 <b>x</b>")
    assert utf16_len(text) == 4
    assert entities == [{"type": "bold", "offset": 3, "length": 1}]


# ------------------------------------------------------------------ errors and faults


async def test_fail_next_injects_error_envelopes(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 7", retry_after=7
    )
    fake.fail_next("sendMessage", status=502, description="Bad Gateway", times=2)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(42, "a")
    assert _retry_after_seconds(info.value) == 7
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(42, "a")
    await bot.send_message(42, "finally")
    assert [m.text for m in fake.sent] == ["finally"]
    assert fake.methods_called().count("sendMessage") == 4


async def test_rate_limit_per_chat(fake: FakeTelegram, bot: Bot) -> None:
    fake.set_rate_limit(2, retry_after=1)
    msg = await bot.send_message(42, "one")
    await msg.edit_text("one edited")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(42, "three")
    assert _retry_after_seconds(info.value) == 1
    with pytest.raises(RetryAfter):  # still blocked until retry_after passes
        await msg.edit_text("again")
    await bot.send_message(43, "other chat is not limited")
    await asyncio.sleep(1.05)
    await bot.send_message(42, "after waiting")
    fake.set_rate_limit(None)
    for i in range(5):
        await bot.send_message(42, f"unlimited {i}")


async def test_invalid_token_is_unauthorized(fake: FakeTelegram) -> None:
    wrong = Bot("999999:WRONG", base_url=fake.base_url, base_file_url=fake.base_file_url)
    app = Application.builder().token("999999:WRONG").base_url(fake.base_url).build()
    try:
        with pytest.raises(InvalidToken, match="rejected by the server"):
            await wrong.initialize()
        with pytest.raises(InvalidToken, match="Unauthorized"):
            await wrong.get_me()
        with pytest.raises(InvalidToken):
            await app.initialize()
        assert fake.calls == []
        assert ("999999:WRONG", "getMe") in fake.rejected_calls

        fake.add_token("999999:WRONG")
        assert (await wrong.get_me()).username == "hermes_test_bot"
        fake.remove_token("999999:WRONG")
        with pytest.raises(InvalidToken):
            await wrong.get_me()
    finally:
        # A failed initialize() leaves PTB's HTTP pools open; only bot.shutdown() closes them.
        await wrong.shutdown()
        await app.bot.shutdown()


async def test_unknown_method_is_not_found(bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")


async def test_wait_for_timeout_explains(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(42, "something")
    with pytest.raises(TimeoutError, match="sendMessage"):
        await fake.wait_for(lambda: len(fake.sent) > 1, timeout=0.1)


# ------------------------------------------------------------------ updates


async def test_long_poll_waits_and_offset_confirms(fake: FakeTelegram, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=dt.timedelta(milliseconds=300)) == ()
    assert time.monotonic() - started >= 0.25

    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await fake.wait_for(lambda: "getUpdates" in fake.methods_called()[-1:])
    await asyncio.sleep(0.05)
    assert not poll.done()
    injected = time.monotonic()
    fake.inject_message(42, "hello")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - injected < 1
    assert [u.message.text for u in updates if u.message] == ["hello"]

    # Not confirmed yet: delivered again.
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [updates[0].update_id]
    assert fake.pending_updates == 1
    confirm = await bot.get_updates(offset=updates[0].update_id + 1, timeout=0)
    assert confirm == ()
    assert fake.pending_updates == 0
    assert fake.confirmed_offset == updates[0].update_id + 1


async def test_get_updates_limit_and_raw_updates(fake: FakeTelegram, bot: Bot) -> None:
    for i in range(3):
        fake.inject_message(42, f"m{i}")
    fake.inject_update({"edited_message": None, "weird": True})
    batch = await bot.get_updates(limit=2, timeout=0)
    assert [u.message.text for u in batch if u.message] == ["m0", "m1"]
    rest = await bot.get_updates(offset=batch[-1].update_id + 1, timeout=0)
    assert len(rest) == 2
    assert fake.pending_updates == 2


async def test_concurrent_polls_conflict(fake: FakeTelegram, bot: Bot) -> None:
    # A second bot instance polling with the same token terminates the first poll. (One Bot
    # cannot overlap polls itself: its getUpdates connection pool has a single connection.)
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_for(lambda: fake.methods_called().count("getUpdates") == 1)
    await asyncio.sleep(0.05)
    async with Bot(fake.token, base_url=fake.base_url) as other:
        second = asyncio.create_task(other.get_updates(timeout=0))
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await asyncio.wait_for(first, 2)
        assert await second == ()


async def test_delete_webhook_drop_pending(fake: FakeTelegram, bot: Bot) -> None:
    fake.inject_message(42, "old")
    assert await bot.set_webhook("https://example.invalid/hook")
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert fake.pending_updates == 0


async def test_polling_application_handles_messages(fake: FakeTelegram) -> None:
    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        await update.effective_message.reply_text(f"hello {update.effective_user.first_name}")

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("echo: " + (update.effective_message.text or ""))

    app = (
        Application.builder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=5)
    try:
        fake.inject_message(77, "/start", first_name="Ada")
        fake.inject_message(
            -100555,
            "topic question",
            chat_type="supergroup",
            user_id=8,
            message_thread_id=3,
            is_topic_message=True,
        )
        await fake.wait_for(lambda: len(fake.sent) == 2)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    [private] = fake.messages_in(77)
    assert private.text == "hello Ada"
    [topic] = fake.messages_in(-100555)
    assert topic.text == "echo: topic question"
    assert topic.message_thread_id == 3  # PTB keeps the topic
    assert topic.reply_to_message_id == 1  # and quotes in groups
    assert "deleteWebhook" in fake.methods_called()
    assert fake.pending_updates == 0  # updater.stop() confirmed what it processed


async def test_stop_and_start_on_same_port(fake: FakeTelegram, bot: Bot) -> None:
    port = fake.port
    fake.inject_message(42, "survives restart")
    await fake.stop()
    with pytest.raises(NetworkError):
        await bot.get_me()
    await fake.start(port=port)
    assert fake.port == port
    assert (await bot.get_me()).username == "hermes_test_bot"
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["survives restart"]


async def test_stop_ends_a_pending_long_poll(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_for(lambda: "getUpdates" in fake.methods_called())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await fake.stop()
    try:
        await asyncio.wait_for(poll, 2)
    except NetworkError:
        pass
    assert time.monotonic() - started < 1.5


# ------------------------------------------------------------------ commands and files


async def test_set_and_get_my_commands(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Show help")])
    assert fake.my_commands == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Show help"},
    ]
    commands = await bot.get_my_commands()
    assert [c.command for c in commands] == ["start", "help"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "nope")])


async def test_get_file_and_download(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_file("PHOTO1", b"\x89PNG fake bytes", "photos/file_1.png")
    update = fake.inject_message(42, photo_file_id="PHOTO1", caption="look")
    assert update["message"]["caption"] == "look"
    file = await bot.get_file("PHOTO1")
    assert file.file_size == 15
    assert file.file_path == f"{fake.base_file_url}{fake.token}/photos/file_1.png"
    assert bytes(await file.download_as_bytearray()) == b"\x89PNG fake bytes"
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("NOPE")


async def test_send_document_multipart(fake: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_document(
        42,
        document=b"report body",
        filename="report.txt",
        caption="<b>Report</b>",
        parse_mode="HTML",
    )
    assert msg.document is not None and msg.document.file_name == "report.txt"
    assert msg.caption == "Report"
    record = fake.sent[-1]
    assert record.kind == "document"
    assert record.file is not None and record.file.content == b"report body"
    downloaded = await (await bot.get_file(msg.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == b"report body"
    photo = await bot.send_photo(42, photo=b"img", caption="pic")
    assert photo.photo and photo.photo[-1].file_size == 3


async def test_many_chats_at_once(fake: FakeTelegram) -> None:
    async with Bot(fake.token, base_url=fake.base_url) as b:

        async def stream(chat_id: int) -> None:
            msg = await b.send_message(chat_id, "…")
            text = ""
            for word in ("alpha", "beta", "gamma", "delta"):
                text += word + " "
                await msg.edit_text(text)

        await asyncio.gather(*(stream(1000 + i) for i in range(50)))
    assert len(fake.sent) == 50
    for i in range(50):
        [record] = fake.messages_in(1000 + i)
        assert record.message_id == 1
        assert record.current_text == "alpha beta gamma delta "
        assert record.plain_text == "alpha beta gamma delta"  # Telegram trims
        assert len(record.edits) == 4


async def test_buttons_callbacks_chat_and_drafts(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data="ok")]])
    msg = await bot.send_message(42, "Run rm -rf?", reply_markup=keyboard)
    assert msg.reply_markup == keyboard
    update = Update.de_json(fake.inject_callback_query(42, msg.message_id, "ok"), bot)
    assert update.callback_query is not None and update.callback_query.data == "ok"
    assert await bot.answer_callback_query(update.callback_query.id, text="Approved")
    assert fake.callback_answers[-1]["text"] == "Approved"
    # Editing the text without reply_markup removes the keyboard, as on Telegram.
    edited = await msg.edit_text("Approved")
    assert edited.reply_markup is None
    chat = await bot.get_chat(42)
    assert chat.id == 42 and chat.type == "private"
    assert await bot.send_message_draft(42, draft_id=1, text="thinking")
    assert fake.drafts == [(42, 1, "thinking")]
