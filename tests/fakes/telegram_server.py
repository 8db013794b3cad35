"""A fake Telegram Bot API server for driving the real python-telegram-bot over HTTP.

Why a server and not a mock: the gateway's Telegram adapter must survive what the real
network does to it (long polls, flood control, restarts, bad tokens, markup rejected by
Telegram's entity parser). Pointing the unmodified python-telegram-bot (PTB) at this server
through ``base_url``/``base_file_url`` keeps PTB's own request encoding, error mapping and
polling loop in the loop, so tests exercise exactly what production runs.

Usage::

    async with FakeTelegram() as tg:
        app = (
            Application.builder()
            .token(tg.token)
            .base_url(tg.base_url)
            .base_file_url(tg.base_file_url)
            .build()
        )
        tg.inject_message(42, "/start")
        await tg.wait_for(lambda: tg.messages_in(42))

The server keeps all state (updates queue, messages, files) across :meth:`FakeTelegram.stop`
and :meth:`FakeTelegram.start`, so a stop/start on the same port looks to the bot like the
Telegram servers going away and coming back.

Deliberate simplifications (documented so tests do not rely on them):
- Any chat id is accepted; unknown chats are synthesised (positive id -> private chat,
  ``-100...`` -> supergroup, other negative -> group). Telegram would say "chat not found".
- Outgoing text is not scanned for automatic entities (urls, mentions, commands).
- With ``strict_html_ampersand`` (default True) a bare ``&`` that is not a valid entity is
  rejected in HTML mode; real Telegram keeps it as a literal character. Being stricter
  catches missing ``html.escape`` calls that would break on a following ``<``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "NOT_MODIFIED_DESCRIPTION",
    "EntityParseError",
    "FakeTelegram",
    "SentMessage",
    "StoredFile",
    "UploadedFile",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "utf16_len",
]

DEFAULT_TOKEN = "123456:TEST-TOKEN"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
FIRST_UPDATE_ID = 1000

NOT_MODIFIED_DESCRIPTION = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)

# Parameters whose form-encoded string value must be converted, mirroring how the Bot API
# types its fields (PTB sends strings raw and everything else JSON-encoded).
_INT_FIELDS = frozenset(
    "chat_id from_chat_id message_id message_thread_id reply_to_message_id offset limit "
    "draft_id user_id duration width height max_connections".split()
)
_FLOAT_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset(
    "drop_pending_updates disable_notification protect_content "
    "allow_sending_without_reply disable_web_page_preview show_alert has_spoiler "
    "disable_content_type_detection allow_paid_broadcast".split()
)
_JSON_FIELDS = frozenset(
    "reply_parameters reply_markup entities caption_entities allowed_updates commands "
    "scope link_preview_options message_ids".split()
)

_CHAT_ACTIONS = frozenset(
    "typing upload_photo record_video upload_video record_voice upload_voice "
    "upload_document choose_sticker find_location record_video_note upload_video_note".split()
)
_DEFAULT_ALLOWED_UPDATES = frozenset(
    "message edited_message channel_post edited_channel_post business_connection "
    "business_message edited_business_message deleted_business_messages inline_query "
    "chosen_inline_result callback_query shipping_query pre_checkout_query "
    "purchased_paid_media poll poll_answer my_chat_member chat_join_request chat_boost "
    "removed_chat_boost".split()
)
# Media send methods -> the parameter (and Message field) carrying the file.
_MEDIA_METHODS = {
    "senddocument": "document",
    "sendphoto": "photo",
    "sendaudio": "audio",
    "sendvoice": "voice",
    "sendvideo": "video",
    "sendanimation": "animation",
}
_FILE_DIRS = {
    "document": "documents",
    "photo": "photos",
    "audio": "music",
    "voice": "voice",
    "video": "videos",
    "animation": "animations",
}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for limits and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    """Telegram reports parse errors at UTF-8 byte offsets of the raw text."""
    return len(text[:index].encode("utf-8"))


class ApiError(Exception):
    """An error envelope to return instead of a result."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


class EntityParseError(ValueError):
    """Raised by the markup parsers; the message is Telegram's text after 'can't parse entities: '."""


# --------------------------------------------------------------------------------------
# Markup parsers. They return (plain_text, entities) like Telegram does after parsing, so
# the fake can answer with the real Message shape and compare edits the way Telegram does.
# --------------------------------------------------------------------------------------


class _Out:
    """Accumulates plain text while tracking the UTF-16 position for entity offsets."""

    __slots__ = ("chars", "parts", "pos")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0  # UTF-16 code units
        self.chars = 0  # Python characters

    def emit(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.pos += utf16_len(chunk)
        self.chars += len(chunk)

    def text(self) -> str:
        return "".join(self.parts)


def _sorted_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


_HTML_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z]+));?")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_PLAIN_RUN = re.compile(r"[^&<]+")


def _decode_html_entity(text: str, i: int) -> tuple[str, int] | None:
    match = _HTML_ENTITY_RE.match(text, i)
    if match is None:
        return None
    dec, hexa, name = match.groups()
    if name is not None:
        char = _HTML_NAMED.get(name)
        if char is None:
            return None
        return char, match.end()
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code >= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    start: int
    index: int
    language: str | None = None


def _read_html_attrs(text: str, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Parse attributes up to the closing '>' and return them plus the index after '>'."""
    n = len(text)
    attrs: dict[str, str] = {}
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        if text[i] == ">":
            return attrs, i + 1
        name_start = i
        while i < n and not text[i].isspace() and text[i] not in "=>":
            i += 1
        name = text[name_start:i].lower()
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}'
            )
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        if text[i] != "=":
            attrs[name] = ""
            continue
        i += 1
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        if text[i] in "'\"":
            quote = text[i]
            i += 1
            value: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "&":
                    decoded = _decode_html_entity(text, i)
                    if decoded is not None:
                        value.append(decoded[0])
                        i = decoded[1]
                        continue
                value.append(text[i])
                i += 1
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            attrs[name] = "".join(value)
        else:
            token_start = i
            while i < n and (text[i].isalnum() or text[i] in ".-"):
                i += 1
            if i < n and not text[i].isspace() and text[i] != ">":
                raise EntityParseError(
                    f"Unexpected end of name token at byte offset {_byte_offset(text, token_start)}"
                )
            attrs[name] = text[token_start:i].lower()


def _html_entity_for(tag: _OpenTag, out: _Out, content_start: int) -> dict[str, Any] | None:
    length = out.pos - tag.start
    if length <= 0:
        return None
    etype = _HTML_TAGS[tag.name]
    entity: dict[str, Any] = {"type": etype, "offset": tag.start, "length": length}
    if tag.name == "a":
        url = tag.attrs.get("href") or out.text()[content_start:]
        user = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if user:
            entity["type"] = "text_mention"
            entity["user"] = {"id": int(user.group(1)), "is_bot": False, "first_name": ""}
        elif url:
            entity["url"] = url
        else:
            return None
    elif tag.name == "pre" and tag.language:
        entity["language"] = tag.language
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    return entity


def parse_html(text: str, *, strict_ampersand: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into plain text and entities.

    Follows Telegram's rules: only the supported tags, properly nested, ``<`` must be a tag,
    only ``&lt; &gt; &amp; &quot;`` and numeric entities are decoded.

    Raises:
        EntityParseError: with Telegram's description of the first problem.
    """
    out = _Out()
    plain_index: list[int] = []  # char index in out.text() where each open tag's content starts
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is None:
                if strict_ampersand:
                    raise EntityParseError(
                        "Character '&' must be escaped as \"&amp;\" unless it starts an HTML "
                        f"entity at byte offset {_byte_offset(text, i)}"
                    )
                out.emit("&")
                i += 1
            else:
                out.emit(decoded[0])
                i = decoded[1]
            continue
        if c != "<":
            run = _HTML_PLAIN_RUN.match(text, i)
            assert run is not None
            out.emit(run.group())
            i = run.end()
            continue
        begin = i
        if i + 1 < n and text[i + 1] == "/":
            j = i + 2
            while j < n and not text[j].isspace() and text[j] != ">":
                j += 1
            end_name = text[i + 2 : j].lower()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != ">":
                raise EntityParseError(
                    f"Unclosed end tag at byte offset {_byte_offset(text, begin)}"
                )
            if not stack:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(text, begin)}"
                )
            top = stack.pop()
            content_start = plain_index.pop()
            if end_name and end_name != top.name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{top.name}>", found "</{end_name}>"'
                )
            language = top.attrs.get("class", "")
            if top.name == "code" and stack and stack[-1].name == "pre":
                # <pre><code class="language-x"> is one pre entity with a language.
                if language.startswith("language-"):
                    stack[-1].language = language[len("language-") :]
            elif any(t.name in ("pre", "code") for t in stack):
                pass  # nothing nests inside code/pre
            else:
                entity = _html_entity_for(top, out, content_start)
                if entity is not None:
                    entities.append(entity)
            i = j + 1
            continue
        j = i + 1
        while j < n and not text[j].isspace() and text[j] != ">":
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        name = text[i + 1 : j].lower()
        if name not in _HTML_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            )
        attrs, i = _read_html_attrs(text, j, name, begin)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
            )
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise EntityParseError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        stack.append(_OpenTag(name=name, attrs=attrs, start=out.pos, index=begin))
        plain_index.append(out.chars)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.text(), _sorted_entities(entities)


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_PLAIN_RUN = re.compile(r"[^\\\n_*\[\]()~`>#+\-=|{}.!]+")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass
class _MdOpen:
    type: str
    start: int
    index: int


def _md_reserved(text: str, i: int) -> EntityParseError:
    return EntityParseError(
        f"Character '{text[i]}' is reserved and must be escaped with the preceding '\\'"
    )


def _md_scan_code(text: str, i: int, closer: str) -> tuple[str, int] | None:
    """Scan code/pre content from i to the closer; backslash escapes any character."""
    n = len(text)
    chunk: list[str] = []
    while i < n:
        if text[i] == "\\" and i + 1 < n:
            chunk.append(text[i + 1])
            i += 2
            continue
        if text.startswith(closer, i):
            return "".join(chunk), i + len(closer)
        chunk.append(text[i])
        i += 1
    return None


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse MarkdownV2 into plain text and entities, enforcing reserved-character escaping.

    A faithful-enough subset of Telegram's parser: bold, italic, underline, strikethrough,
    spoiler, inline and block code, links, custom emoji, and line-start blockquotes
    (``>`` and expandable ``**>`` ... ``||``).

    Raises:
        EntityParseError: with Telegram's description of the first problem.
    """
    out = _Out()
    stack: list[_MdOpen] = []
    entities: list[dict[str, Any]] = []
    quote: dict[str, Any] | None = None  # open blockquote: start, end, expandable
    i, n = 0, len(text)
    line_start = True

    def close_quote() -> None:
        nonlocal quote
        if quote is not None:
            length = quote["end"] - quote["start"]
            if length > 0:
                etype = "expandable_blockquote" if quote["expandable"] else "blockquote"
                entities.append({"type": etype, "offset": quote["start"], "length": length})
            quote = None

    def close(entity: _MdOpen, extra: dict[str, Any] | None = None) -> None:
        length = out.pos - entity.start
        if length > 0:
            item = {"type": entity.type, "offset": entity.start, "length": length}
            if extra:
                item.update(extra)
            entities.append(item)

    while i < n:
        c = text[i]
        if line_start:
            line_start = False
            marker = 3 if text.startswith("**>", i) else 1 if c == ">" else 0
            if marker:
                if quote is None:
                    quote = {"start": out.pos, "end": out.pos, "expandable": marker == 3}
                i += marker
                continue
            close_quote()
        if c == "\\":
            if i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                out.emit(text[i + 1])
                i += 2
            else:
                out.emit("\\")
                i += 1
            continue
        if c == "\n":
            if quote is not None:
                quote["end"] = out.pos
            out.emit("\n")
            i += 1
            line_start = True
            continue
        if c not in _MDV2_RESERVED:
            run = _MDV2_PLAIN_RUN.match(text, i)
            assert run is not None
            out.emit(run.group())
            i = run.end()
            continue
        top = stack[-1] if stack else None
        top_type = top.type if top else None
        if c == "`":
            if text.startswith("```", i):
                j = i + 3
                lang_end = j
                while lang_end < n and not text[lang_end].isspace() and text[lang_end] != "`":
                    lang_end += 1
                language = text[j:lang_end] if lang_end < n and text[lang_end] == "\n" else ""
                j = lang_end if language else j
                if j < n and text[j] == "\n":
                    j += 1
                scanned = _md_scan_code(text, j, "```")
                if scanned is None:
                    raise EntityParseError(
                        f"Can't find end of Pre entity at byte offset {_byte_offset(text, i)}"
                    )
                start = out.pos
                out.emit(scanned[0])
                if out.pos > start:
                    item: dict[str, Any] = {
                        "type": "pre",
                        "offset": start,
                        "length": out.pos - start,
                    }
                    if language:
                        item["language"] = language
                    entities.append(item)
                i = scanned[1]
            else:
                scanned = _md_scan_code(text, i + 1, "`")
                if scanned is None:
                    raise EntityParseError(
                        f"Can't find end of Code entity at byte offset {_byte_offset(text, i)}"
                    )
                start = out.pos
                out.emit(scanned[0])
                if out.pos > start:
                    entities.append({"type": "code", "offset": start, "length": out.pos - start})
                i = scanned[1]
            continue
        if c == "*":
            if top_type == "bold":
                close(stack.pop())
            else:
                stack.append(_MdOpen("bold", out.pos, i))
            i += 1
            continue
        if c == "_":
            if top_type == "underline" and text.startswith("__", i):
                close(stack.pop())
                i += 2
            elif top_type == "italic":
                close(stack.pop())
                i += 1
            elif text.startswith("__", i):
                stack.append(_MdOpen("underline", out.pos, i))
                i += 2
            else:
                stack.append(_MdOpen("italic", out.pos, i))
                i += 1
            continue
        if c == "~":
            if top_type == "strikethrough":
                close(stack.pop())
            else:
                stack.append(_MdOpen("strikethrough", out.pos, i))
            i += 1
            continue
        if c == "|" and text.startswith("||", i):
            at_line_end = i + 2 >= n or text[i + 2] == "\n"
            if top_type == "spoiler":
                close(stack.pop())
            elif quote is not None and quote["expandable"] and at_line_end:
                quote["end"] = out.pos
                close_quote()
            else:
                stack.append(_MdOpen("spoiler", out.pos, i))
            i += 2
            continue
        if c == "[":
            stack.append(_MdOpen("text_link", out.pos, i))
            i += 1
            continue
        if c == "!" and text.startswith("![", i):
            stack.append(_MdOpen("custom_emoji", out.pos, i))
            i += 2
            continue
        if c == "]" and top_type in ("text_link", "custom_emoji"):
            assert top is not None
            stack.pop()
            i += 1
            if i < n and text[i] == "(":
                scanned = _md_scan_code(text, i + 1, ")")
                if scanned is None:
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, i)}"
                    )
                url, i = scanned
                if top.type == "custom_emoji":
                    emoji = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
                    if emoji is None:
                        raise EntityParseError("Custom emoji URL must have scheme tg")
                    close(top, {"custom_emoji_id": emoji.group(1)})
                else:
                    user = re.fullmatch(r"tg://user\?id=(\d+)", url)
                    if user:
                        top.type = "text_mention"
                        close(
                            top,
                            {"user": {"id": int(user.group(1)), "is_bot": False, "first_name": ""}},
                        )
                    elif url:
                        close(top, {"url": url})
            continue
        raise _md_reserved(text, i)
    if stack:
        top = stack[-1]
        name = _MDV2_NAMES.get(top.type, top.type)
        raise EntityParseError(
            f"Can't find end of {name} entity at byte offset {_byte_offset(text, top.index)}"
        )
    if quote is not None:
        quote["end"] = out.pos
        close_quote()
    return out.text(), _sorted_entities(entities)


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse legacy Markdown (``*bold*``, ``_italic_``, `` `code` ``, ``[text](url)``).

    Raises:
        EntityParseError: when an entity is not closed.
    """
    out = _Out()
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.emit(text[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.emit(c)
            i += 1
            continue
        begin = i
        if c == "`" and text.startswith("```", i):
            scanned = text.find("```", i + 3)
            if scanned < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
                )
            body = text[i + 3 : scanned]
            language = ""
            first, sep, rest = body.partition("\n")
            if sep and first and not any(ch.isspace() for ch in first):
                language, body = first, rest
            elif body.startswith("\n"):
                body = body[1:]
            start = out.pos
            out.emit(body)
            if out.pos > start:
                item: dict[str, Any] = {"type": "pre", "offset": start, "length": out.pos - start}
                if language:
                    item["language"] = language
                entities.append(item)
            i = scanned + 3
            continue
        end_char = "]" if c == "[" else c
        end = text.find(end_char, i + 1)
        if end < 0:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        start = out.pos
        out.emit(text[i + 1 : end])
        i = end + 1
        extra: dict[str, Any] = {}
        etype = {"_": "italic", "*": "bold", "`": "code", "[": "text_link"}[c]
        if c == "[":
            url = text[begin + 1 : end]
            if i < n and text[i] == "(":
                close_paren = text.find(")", i)
                if close_paren < 0:
                    raise EntityParseError(
                        "Can't find end of the entity starting at byte offset "
                        f"{_byte_offset(text, begin)}"
                    )
                url = text[i + 1 : close_paren]
                i = close_paren + 1
            extra["url"] = url
        if out.pos > start:
            entities.append({"type": etype, "offset": start, "length": out.pos - start, **extra})
    return out.text(), _sorted_entities(entities)


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip surrounding whitespace like Telegram does, keeping entities aligned."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    fixed: list[dict[str, Any]] = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] + entity["length"] - lead)
        if end > start:
            fixed.append({**entity, "offset": start, "length": end - start})
    return stripped, fixed


# --------------------------------------------------------------------------------------
# Records exposed to tests.
# --------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part received in a multipart request."""

    filename: str | None
    content: bytes
    content_type: str | None

    def __repr__(self) -> str:  # keep call logs readable
        return f"UploadedFile({self.filename!r}, {len(self.content)} bytes)"


@dataclass
class StoredFile:
    """A file the bot can fetch with getFile and download under base_file_url."""

    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str


@dataclass
class SentMessage:
    """A message the bot created, with its edit history.

    ``text`` is the raw text (or caption) exactly as first sent, including markup;
    ``edits`` holds the raw text of every successful edit; ``message`` is the current
    Telegram Message object as the API returns it (markup parsed into entities).
    ``parse_mode`` is the one used by the latest send or edit.
    """

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    message_thread_id: int | None
    reply_to_message_id: int | None
    message: dict[str, Any]
    kind: str = "text"
    edits: list[str] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    deleted: bool = False
    file: UploadedFile | None = None
    sent_at: float = field(default_factory=time.monotonic)
    edited_at: list[float] = field(default_factory=list)

    @property
    def current_text(self) -> str:
        """Raw text after the latest edit."""
        return self.edits[-1] if self.edits else self.text

    @property
    def plain_text(self) -> str:
        """The text as Telegram renders it (markup removed), after the latest edit."""
        return str(self.message.get("text", self.message.get("caption", "")))

    @property
    def entities(self) -> list[dict[str, Any]]:
        """Entities of the current text as Telegram parsed them."""
        key = "entities" if "text" in self.message else "caption_entities"
        return list(self.message.get(key, []))


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None


# --------------------------------------------------------------------------------------
# The server.
# --------------------------------------------------------------------------------------


class FakeTelegram:
    """An in-process fake of the Telegram Bot API for the real python-telegram-bot.

    All tokens registered with the constructor or :meth:`add_token` address the same bot
    (one updates queue, one message store). Every call is recorded in :attr:`calls`.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "hermes_test_bot",
        bot_first_name: str = "Hermes Test Bot",
        strict_html_ampersand: bool = True,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.strict_html_ampersand = strict_html_ampersand
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 123456
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._tokens: set[str] = {token}
        self.port: int = 0
        self._runner: web.AppRunner | None = None

        # Recorded traffic.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.rejected_calls: list[tuple[str, str]] = []  # (token, method) answered 401
        self.sent: list[SentMessage] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.drafts: list[tuple[int, int, str]] = []  # (chat_id, draft_id, text)
        self.callback_answers: list[dict[str, Any]] = []
        self.my_commands: list[dict[str, Any]] | None = None
        self.commands_by_scope: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook_url = ""

        # Updates queue and long-poll state.
        self._updates: deque[dict[str, Any]] = deque()
        self._next_update_id = FIRST_UPDATE_ID
        self.confirmed_offset = 0
        self._allowed_updates: frozenset[str] = _DEFAULT_ALLOWED_UPDATES
        self._poll_waiter: asyncio.Future[str] | None = None

        # Chats, messages, files.
        self._chats: dict[int, dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._sent_index: dict[tuple[int, int], SentMessage] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_counter = 0

        # Fault injection.
        self._failures: dict[str, deque[_Failure]] = {}
        self._stall: dict[str, int] = {}
        self._stall_release = asyncio.Event()
        self.stalled = 0
        """Calls held by :meth:`stall_next` so far (recorded in :attr:`calls`, never done)."""
        self._rate_limit: float | None = None
        self._rate_retry_after = 1
        self._rate_events: dict[int, deque[float]] = {}
        self._blocked_until: dict[int, float] = {}

        self._changed = asyncio.Event()
        self._methods: dict[str, Callable[..., Any]] = {
            "getme": self._get_me,
            "logout": self._ok_true,
            "close": self._ok_true,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_reply_markup,
            "deletemessage": self._delete_message,
            "deletemessages": self._delete_messages,
            "sendchataction": self._send_chat_action,
            "sendmessagedraft": self._send_message_draft,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getfile": self._get_file,
            "getchat": self._get_chat,
            "answercallbackquery": self._answer_callback_query,
        }
        for method, kind in _MEDIA_METHODS.items():
            self._methods[method] = functools.partial(self._send_media, kind)

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """Pass to PTB's ``base_url``; PTB appends the token."""
        return f"http://127.0.0.1:{self._require_port()}/bot"

    @property
    def base_file_url(self) -> str:
        """Pass to PTB's ``base_file_url``; PTB appends the token."""
        return f"http://127.0.0.1:{self._require_port()}/file/bot"

    @property
    def running(self) -> bool:
        return self._runner is not None

    def _require_port(self) -> int:
        if not self.port:
            raise RuntimeError("FakeTelegram is not started")
        return self.port

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (port 0 picks a free port; pass ``self.port`` to come back)."""
        if self._runner is not None:
            raise RuntimeError("FakeTelegram is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        # handler_cancellation: a long poll whose client hung up must stop waiting, or the
        # next getUpdates would wrongly see a conflicting poll.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Close the listener and drop open connections; state is kept for a restart."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._resolve_poller("stop")
        self._stall_release.set()  # a held call must not keep the listener from closing
        await runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- control API

    def add_token(self, token: str) -> None:
        """Accept another token for the same bot."""
        self._tokens.add(token)

    def remove_token(self, token: str) -> None:
        """Revoke a token: further calls with it get 401 (simulates a token reset)."""
        self._tokens.discard(token)

    def add_file(self, file_id: str, content: bytes, file_path: str) -> None:
        """Register a file for getFile and download under ``base_file_url``."""
        self._files[file_id] = StoredFile(
            file_id=file_id,
            file_unique_id=f"U{abs(hash(file_id)) % 10**10}",
            content=content,
            file_path=file_path,
        )

    def fail_next(
        self,
        method: str,
        *,
        status: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with this error envelope."""
        queue = self._failures.setdefault(method.lower(), deque())
        for _ in range(times):
            queue.append(_Failure(status, description, retry_after))

    def stall_next(self, method: str, *, times: int = 1) -> None:
        """Hold the next ``times`` calls of ``method`` as a lost network would: recorded in
        :attr:`calls` (and counted in :attr:`stalled`), then no answer until
        :meth:`release_stalled`, and never carried out (a process killed while waiting on
        one sent nothing)."""
        key = method.lower()
        self._stall[key] = self._stall.get(key, 0) + times

    def release_stalled(self) -> None:
        """End the held calls with a 502, without carrying them out."""
        self._stall_release.set()

    def delete_as_moderator(self, chat_id: int, message_id: int) -> None:
        """Delete a bot message the way a chat admin would (later edits: "not found")."""
        if not self._delete_one(chat_id, message_id):
            raise KeyError(f"no message {message_id} in chat {chat_id}")

    def set_rate_limit(self, per_chat_per_second: float | None, retry_after: int = 1) -> None:
        """Limit sends+edits per chat; excess calls get 429 until ``retry_after`` passes."""
        self._rate_limit = per_chat_per_second
        self._rate_retry_after = retry_after
        self._rate_events.clear()
        self._blocked_until.clear()

    def messages_in(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot created in one chat, in order (deleted ones included)."""
        return [m for m in self.sent if m.chat_id == chat_id]

    def methods_called(self) -> list[str]:
        """Method names of :attr:`calls`, in order."""
        return [method for method, _ in self.calls]

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return len(self._updates)

    @property
    def last_update_id(self) -> int:
        """The highest ``update_id`` injected so far (0 before the first)."""
        return self._next_update_id - 1 if self._next_update_id > FIRST_UPDATE_ID else 0

    def inject_update(self, update: dict[str, Any]) -> None:
        """Queue a raw update as is (an ``update_id`` is added only when missing)."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        uid = update["update_id"]
        if isinstance(uid, int):
            self._next_update_id = max(self._next_update_id, uid + 1)
        self._updates.append(update)
        self._resolve_poller("update")
        self._notify()

    def inject_message(
        self,
        chat_id: int,
        text: str = "",
        *,
        user_id: int | None = None,
        username: str | None = None,
        first_name: str = "User",
        chat_type: str = "private",
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        photo_file_id: str | None = None,
        document: dict[str, Any] | None = None,
        caption: str | None = None,
        is_topic_message: bool | None = None,
        chat_title: str | None = None,
    ) -> dict[str, Any]:
        """Queue a user's message as Telegram would deliver it and return the Update.

        ``bot_command`` and ``mention`` entities are computed when ``entities`` is None.
        """
        if user_id is None:
            user_id = chat_id if chat_type == "private" else 1000
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        user["language_code"] = "en"
        chat = self._register_chat(
            chat_id, chat_type, user=user, title=chat_title, forum=bool(is_topic_message)
        )
        message: dict[str, Any] = {
            "message_id": self._allocate_message_id(chat_id),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
        }
        if message_thread_id is not None:
            message["message_thread_id"] = message_thread_id
        if is_topic_message:
            message["is_topic_message"] = True
        if reply_to_message_id is not None:
            replied = self._messages.get((chat_id, reply_to_message_id))
            message["reply_to_message"] = (
                self._strip_reply(replied)
                if replied is not None
                else {
                    "message_id": reply_to_message_id,
                    "chat": chat,
                    "date": int(time.time()),
                }
            )
        media = photo_file_id is not None or document is not None
        if photo_file_id is not None:
            stored = self._files.get(photo_file_id)
            message["photo"] = [
                {
                    "file_id": photo_file_id,
                    "file_unique_id": stored.file_unique_id if stored else f"U{photo_file_id}",
                    "width": 1280,
                    "height": 720,
                    "file_size": len(stored.content) if stored else 0,
                }
            ]
        if document is not None:
            doc = dict(document)
            doc.setdefault("file_id", f"DOC{self._file_counter}")
            doc.setdefault("file_unique_id", f"U{doc['file_id']}")
            stored = self._files.get(doc["file_id"])
            if stored is not None:
                doc.setdefault("file_size", len(stored.content))
            message["document"] = doc
        body = caption if media else (text or caption)
        if body:
            key = "caption" if media else "text"
            message[key] = body
            ents = entities if entities is not None else self._auto_entities(body)
            if ents:
                message["caption_entities" if media else "entities"] = ents
        self._messages[(chat_id, message["message_id"])] = message
        update = {"update_id": self._next_update_id, "message": message}
        self._next_update_id += 1
        if "message" in self._allowed_updates:
            self._updates.append(update)
            self._resolve_poller("update")
        self._notify()
        return update

    def inject_callback_query(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "User",
    ) -> dict[str, Any]:
        """Queue a button press on a message the bot sent and return the Update."""
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        uid = user_id if user_id is not None else chat_id
        update = {
            "update_id": self._next_update_id,
            "callback_query": {
                "id": str(self._next_update_id * 7919),
                "from": {"id": uid, "is_bot": False, "first_name": first_name},
                "message": message,
                "chat_instance": str(chat_id),
                "data": data,
            },
        }
        self.inject_update(update)
        return update

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true; re-checked on every state change.

        Raises:
            TimeoutError: with the recent API traffic to help debugging.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = ", ".join(self.methods_called()[-15:]) or "none"
                texts = [m.current_text[:60] for m in self.sent[-5:]]
                raise TimeoutError(
                    f"condition not met within {timeout}s; last API calls: {recent}; "
                    f"last sent texts: {texts}; pending updates: {self.pending_updates}"
                )
            changed = self._changed
            try:
                # Capped so predicates over state outside this fake are re-checked too.
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass

    # ---------------------------------------------------------------- internals

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _resolve_poller(self, reason: str) -> None:
        waiter = self._poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(reason)

    def _register_chat(
        self,
        chat_id: int,
        chat_type: str,
        *,
        user: dict[str, Any] | None = None,
        title: str | None = None,
        forum: bool = False,
    ) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = (user or {}).get("first_name", "User")
                if user and user.get("username"):
                    chat["username"] = user["username"]
            else:
                chat["title"] = title or f"Chat {chat_id}"
            self._chats[chat_id] = chat
        if forum and chat_type == "supergroup":
            chat["is_forum"] = True
        return chat

    def _chat(self, chat_id: int) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is not None:
            return chat
        if chat_id > 0:
            return self._register_chat(chat_id, "private")
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return self._register_chat(chat_id, kind)

    def _allocate_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = message_id
        return message_id

    @staticmethod
    def _strip_reply(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if k != "reply_to_message"}

    def _auto_entities(self, text: str) -> list[dict[str, Any]]:
        entities: list[dict[str, Any]] = []
        for match in re.finditer(r"(?<![\w/@])(/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?)", text):
            entities.append(
                {
                    "type": "bot_command",
                    "offset": utf16_len(text[: match.start(1)]),
                    "length": utf16_len(match.group(1)),
                }
            )
        for match in re.finditer(r"(?<![\w/@])(@[A-Za-z0-9_]{5,32})", text):
            entities.append(
                {
                    "type": "mention",
                    "offset": utf16_len(text[: match.start(1)]),
                    "length": utf16_len(match.group(1)),
                }
            )
        return _sorted_entities(entities)

    # ---------------------------------------------------------------- HTTP layer

    @staticmethod
    def _envelope_error(
        status: int, description: str, retry_after: int | None = None
    ) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return self._envelope_error(404, "Not Found")

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise ApiError(400, "Bad Request: can't parse JSON request body") from exc
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(
                            filename=value.filename,
                            content=value.file.read(),
                            content_type=value.content_type,
                        )
                    else:
                        raw[key] = value
        return self._coerce(raw), files

    @staticmethod
    def _coerce(raw: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str):
                if key in _JSON_FIELDS:
                    try:
                        value = json.loads(value)
                    except ValueError as exc:
                        raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from exc
                elif key in _INT_FIELDS:
                    try:
                        value = int(value)
                    except ValueError:
                        if key != "chat_id":
                            raise ApiError(400, f"Bad Request: invalid {key} specified") from None
                elif key in _FLOAT_FIELDS:
                    try:
                        value = float(value)
                    except ValueError:
                        raise ApiError(400, f"Bad Request: invalid {key} specified") from None
                elif key in _BOOL_FIELDS:
                    value = value.lower() in ("true", "1")
            params[key] = value
        return params

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method = request.match_info["method"]
        if token not in self._tokens:
            self.rejected_calls.append((token, method))
            self._notify()
            return self._envelope_error(401, "Unauthorized")
        try:
            params, files = await self._read_params(request)
        except ApiError as exc:
            return self._envelope_error(exc.status, exc.description, exc.retry_after)
        logged = dict(params)
        logged.update(files)
        self.calls.append((method, logged))
        key = method.lower()
        handler = self._methods.get(key)
        try:
            if handler is None:
                return self._envelope_error(404, "Not Found")
            if self._stall.get(key):
                self._stall[key] -= 1
                self.stalled += 1
                self._notify()
                await self._stall_release.wait()
                return self._envelope_error(502, "Bad Gateway")
            failures = self._failures.get(key)
            if failures:
                failure = failures.popleft()
                return self._envelope_error(
                    failure.status, failure.description, failure.retry_after
                )
            try:
                result = handler(params, files)
                if asyncio.iscoroutine(result):
                    result = await result
            except ApiError as exc:
                return self._envelope_error(exc.status, exc.description, exc.retry_after)
            return web.json_response({"ok": True, "result": result})
        finally:
            self._notify()

    async def _handle_file(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token not in self._tokens:
            self.rejected_calls.append((token, "file"))
            return self._envelope_error(401, "Unauthorized")
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.content, content_type="application/octet-stream")
        return self._envelope_error(404, "Not Found")

    # ---------------------------------------------------------------- validation helpers

    @staticmethod
    def _require_chat_id(params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _render(
        self,
        text: str,
        parse_mode: str | None,
        entities: Any,
        *,
        limit: int,
        too_long: str,
        empty: str | None,
    ) -> tuple[str, list[dict[str, Any]]]:
        if entities is not None:
            if not isinstance(entities, list):
                raise ApiError(400, "Bad Request: can't parse entities JSON object")
            plain, ents = text, list(entities)
        elif parse_mode:
            mode = parse_mode.lower()
            try:
                if mode == "html":
                    plain, ents = parse_html(text, strict_ampersand=self.strict_html_ampersand)
                elif mode == "markdownv2":
                    plain, ents = parse_markdown_v2(text)
                elif mode == "markdown":
                    plain, ents = parse_markdown(text)
                else:
                    raise ApiError(400, "Bad Request: unsupported parse_mode")
            except EntityParseError as exc:
                raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        else:
            plain, ents = text, []
        plain, ents = _trim(plain, ents)
        if empty is not None and not plain:
            raise ApiError(400, empty)
        if utf16_len(plain) > limit:
            raise ApiError(400, too_long)
        return plain, ents

    def _check_rate(self, chat_id: int) -> None:
        if self._rate_limit is None:
            return
        now = time.monotonic()
        blocked = self._blocked_until.get(chat_id, 0.0)
        if now < blocked:
            wait = max(1, math.ceil(blocked - now))
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        rate = self._rate_limit
        window = max(1.0, 1.0 / rate) if rate > 0 else 1.0
        capacity = max(1, round(rate * window)) if rate > 0 else 0
        events = self._rate_events.setdefault(chat_id, deque())
        while events and events[0] <= now - window:
            events.popleft()
        if len(events) >= capacity:
            wait = self._rate_retry_after
            self._blocked_until[chat_id] = now + wait
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        events.append(now)

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise ApiError(400, "Bad Request: can't parse reply parameters JSON object")
        target_chat = reply.get("chat_id", chat_id)
        target = self._messages.get((target_chat, reply["message_id"]))
        if target is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target

    def _new_message(
        self, chat_id: int, params: dict[str, Any], reply_to: dict[str, Any] | None
    ) -> dict[str, Any]:
        chat = self._chat(chat_id)
        message: dict[str, Any] = {
            "message_id": self._allocate_message_id(chat_id),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        thread_id = params.get("message_thread_id")
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = self._strip_reply(reply_to)
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _record(
        self,
        message: dict[str, Any],
        raw_text: str,
        params: dict[str, Any],
        reply_to: dict[str, Any] | None,
        kind: str,
        upload: UploadedFile | None = None,
    ) -> SentMessage:
        chat_id = message["chat"]["id"]
        self._messages[(chat_id, message["message_id"])] = message
        record = SentMessage(
            chat_id=chat_id,
            message_id=message["message_id"],
            text=raw_text,
            parse_mode=params.get("parse_mode"),
            message_thread_id=params.get("message_thread_id"),
            reply_to_message_id=reply_to["message_id"] if reply_to else None,
            message=message,
            kind=kind,
            reply_markup=message.get("reply_markup"),
            file=upload,
        )
        self.sent.append(record)
        self._sent_index[(chat_id, record.message_id)] = record
        return record

    # ---------------------------------------------------------------- methods

    def _ok_true(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        return True

    def _get_me(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    def _get_chat(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._require_chat_id(params)
        return {**self._chat(chat_id), "accent_color_id": 0, "max_reaction_count": 11}

    def _set_webhook(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        self.webhook_url = str(params.get("url", ""))
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _delete_webhook(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            keep = -offset
            while len(self._updates) > keep:
                self._updates.popleft()
            return
        while self._updates:
            uid = self._updates[0].get("update_id")
            # A hostile update with a non-integer id is dropped by any confirmation.
            if isinstance(uid, int) and uid >= offset:
                break
            self._updates.popleft()
        self.confirmed_offset = max(self.confirmed_offset, offset)

    async def _get_updates(
        self, params: dict[str, Any], files: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(409, _CONFLICT_WEBHOOK)
        offset = params.get("offset")
        if isinstance(offset, int):
            self._confirm(offset)
        limit = params.get("limit", 100)
        limit = min(100, max(1, limit if isinstance(limit, int) else 100))
        timeout = params.get("timeout", 0)
        timeout = float(timeout) if isinstance(timeout, int | float) else 0.0
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else _DEFAULT_ALLOWED_UPDATES
        # A newer poll terminates an older one, as Telegram does.
        self._resolve_poller("conflict")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._updates:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            waiter: asyncio.Future[str] = loop.create_future()
            self._poll_waiter = waiter
            try:
                reason = await asyncio.wait_for(asyncio.shield(waiter), remaining)
            except TimeoutError:
                return []
            finally:
                if self._poll_waiter is waiter:
                    self._poll_waiter = None
            if reason == "conflict":
                raise ApiError(409, _CONFLICT_POLL)
            if reason == "stop":
                return []
        return [self._updates[i] for i in range(min(limit, len(self._updates)))]

    def _send_message(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._require_chat_id(params)
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise ApiError(400, "Bad Request: message text is empty")
        plain, entities = self._render(
            text,
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="Bad Request: message is too long",
            empty="Bad Request: message text is empty",
        )
        reply_to = self._reply_target(chat_id, params)
        self._check_rate(chat_id)
        message = self._new_message(chat_id, params, reply_to)
        message["text"] = plain
        if entities:
            message["entities"] = entities
        self._record(message, text, params, reply_to, "text")
        return message

    def _editable(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], SentMessage]:
        if params.get("inline_message_id") is not None:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat_id = self._require_chat_id(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        record = self._sent_index.get((chat_id, message_id))
        if record is None:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat_id, message, record

    def _edit_message_text(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        chat_id, message, record = self._editable(params)
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        plain, entities = self._render(
            text,
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="Bad Request: MESSAGE_TOO_LONG",
            empty="Bad Request: message text is empty",
        )
        markup = params.get("reply_markup")
        markup = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        if (
            plain == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise ApiError(400, NOT_MODIFIED_DESCRIPTION)
        self._check_rate(chat_id)
        updated = {k: v for k, v in message.items() if k not in ("entities", "reply_markup")}
        updated["text"] = plain
        updated["edit_date"] = int(time.time())
        if entities:
            updated["entities"] = entities
        if markup is not None:
            updated["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = updated
        record.message = updated
        record.edits.append(text)
        record.edited_at.append(time.monotonic())
        record.parse_mode = params.get("parse_mode")
        record.reply_markup = markup
        return updated

    def _edit_reply_markup(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        chat_id, message, record = self._editable(params)
        markup = params.get("reply_markup")
        markup = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        if markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED_DESCRIPTION)
        self._check_rate(chat_id)
        updated = {k: v for k, v in message.items() if k != "reply_markup"}
        updated["edit_date"] = int(time.time())
        if markup is not None:
            updated["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = updated
        record.message = updated
        record.reply_markup = markup
        return updated

    def _delete_one(self, chat_id: int, message_id: int) -> bool:
        if self._messages.pop((chat_id, message_id), None) is None:
            return False
        record = self._sent_index.pop((chat_id, message_id), None)
        if record is not None:
            record.deleted = True
        return True

    def _delete_message(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        chat_id = self._require_chat_id(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or not self._delete_one(chat_id, message_id):
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def _delete_messages(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        chat_id = self._require_chat_id(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "Bad Request: message identifiers are not specified")
        for message_id in ids:
            if isinstance(message_id, int):
                self._delete_one(chat_id, message_id)
        return True

    def _send_chat_action(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        chat_id = self._require_chat_id(params)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((chat_id, str(action)))
        return True

    def _send_message_draft(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        chat_id = self._require_chat_id(params)
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise ApiError(400, "Bad Request: invalid draft_id specified")
        text = params.get("text") or ""
        if text:
            self._render(
                text,
                params.get("parse_mode"),
                params.get("entities"),
                limit=MAX_TEXT_LENGTH,
                too_long="Bad Request: message is too long",
                empty=None,
            )
        self._check_rate(chat_id)
        self.drafts.append((chat_id, draft_id, text))
        return True

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_my_commands(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands_by_scope[self._scope_key(params)] = commands
        self.my_commands = commands
        return True

    def _get_my_commands(
        self, params: dict[str, Any], files: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return self.commands_by_scope.get(self._scope_key(params), [])

    def _delete_my_commands(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        self.commands_by_scope.pop(self._scope_key(params), None)
        return True

    def _get_file(self, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.content) > MAX_DOWNLOAD_SIZE:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    def _answer_callback_query(self, params: dict[str, Any], files: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        self.callback_answers.append(params)
        return True

    def _send_media(
        self, kind: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> dict[str, Any]:
        chat_id = self._require_chat_id(params)
        if kind not in params and kind not in files:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        upload = files.get(kind)
        value = params.get(kind)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://") :])
        if upload is not None:
            self._file_counter += 1
            file_id = f"F{kind[:3].upper()}{self._file_counter:06d}"
            suffix = ""
            if upload.filename and "." in upload.filename:
                suffix = "." + upload.filename.rsplit(".", 1)[1]
            path = f"{_FILE_DIRS[kind]}/file_{self._file_counter}{suffix}"
            self.add_file(file_id, upload.content, path)
            stored = self._files[file_id]
        elif isinstance(value, str) and value in self._files:
            stored = self._files[value]
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            # Telegram would download the URL; the fake never leaves 127.0.0.1.
            self._file_counter += 1
            file_id = f"FURL{self._file_counter:06d}"
            self.add_file(file_id, b"", f"{_FILE_DIRS[kind]}/url_{self._file_counter}")
            stored = self._files[file_id]
        else:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        caption = params.get("caption")
        plain, entities = "", []
        if isinstance(caption, str) and caption:
            plain, entities = self._render(
                caption,
                params.get("parse_mode"),
                params.get("caption_entities"),
                limit=MAX_CAPTION_LENGTH,
                too_long="Bad Request: message caption is too long",
                empty=None,
            )
        reply_to = self._reply_target(chat_id, params)
        self._check_rate(chat_id)
        message = self._new_message(chat_id, params, reply_to)
        info: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        if kind == "photo":
            message["photo"] = [{**info, "width": 1280, "height": 720}]
        else:
            if upload is not None and kind in ("document", "audio", "video", "animation"):
                if upload.filename:
                    info["file_name"] = upload.filename
            if upload is not None and upload.content_type:
                info["mime_type"] = upload.content_type
            if kind in ("audio", "voice", "video", "animation"):
                info["duration"] = int(params.get("duration") or 0)
            if kind in ("video", "animation"):
                info["width"] = int(params.get("width") or 0)
                info["height"] = int(params.get("height") or 0)
            message[kind] = info
        if plain:
            message["caption"] = plain
            if entities:
                message["caption_entities"] = entities
        self._record(message, caption or "", params, reply_to, kind, upload)
        return message
