"""Telegram updates -> :class:`~hermes_gateway.models.MessageEvent`, in order per chat.

What happens to one update:

* the chat, topic or reply thread, and sender become a :class:`SessionSource` (forum topics
  and reply threads give the thread part of the session key);
* in groups the message counts as addressed to the bot only when it mentions the bot,
  replies to it, or is a ``/command`` (``/cmd@otherbot`` is someone else's); with
  ``require_mention: false`` every group message is;
* updates whose ids cannot be trusted (not JSON integers, or a private chat that is not
  its sender's) are logged and dropped before anything else looks at them;
* photos and files are downloaded and saved under HERMES_HOME/media, but only for messages
  addressed to the bot from senders the access policy lets in: a stranger cannot make the
  bot fetch 20 MB files (their text still goes on, so pairing can answer them);
* an album (several photos sent together share a ``media_group_id`` but arrive as separate
  updates) is collected until it has been quiet for ``media_group_wait`` and becomes one
  event, so the agent answers once.

:func:`screen_batch` guards the layer below: python-telegram-bot drops a whole getUpdates
batch when one update in it does not parse, without moving the offset, so one malformed
update would stall the bot forever.

Updates of one chat are handled strictly in order (a photo's download must not let the
question typed after it overtake it), while different chats proceed concurrently, so one
slow download never delays anyone else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telegram import Update

from hermes_gateway.access.policy import hash_id
from hermes_gateway.media import kind_for, save_media
from hermes_gateway.models import ChatType, MediaKind, MediaRef, MessageEvent, SessionSource
from hermes_gateway.platforms.base import IntakeError

if TYPE_CHECKING:
    from telegram import Bot, Message

    from hermes_gateway.config import TelegramConfig

__all__ = ["BotIdentity", "TelegramInbound", "screen_batch", "untrusted_ids"]

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
"""The Bot API's getFile limit; larger files cannot be fetched by a bot at all."""
DOWNLOAD_TIMEOUT = 60.0

_CHAT_TYPES: dict[str, ChatType] = {
    "private": "dm",
    "group": "group",
    "supergroup": "group",
    "channel": "channel",
}
_FILE_KINDS: dict[str, MediaKind | None] = {
    "document": None,  # from its MIME type
    "audio": "audio",
    "voice": "audio",
    "video": "video",
    "video_note": "video",
    "animation": "video",
}

Deliver = Callable[[MessageEvent, list["Update"]], Awaitable[None]]
"""Hands a finished event (and the updates it came from) to the adapter."""
Finished = Callable[[Iterable[int]], None]
"""Told which update ids are completely handled (delivered, deferred or ignored)."""
MayFetch = Callable[[SessionSource], Awaitable[bool]]
"""Whether a sender may have their files downloaded (the access policy's ``is_allowed``)."""


@dataclass(frozen=True, slots=True)
class BotIdentity:
    id: int
    username: str


@dataclass(eq=False)
class _Album:
    updates: list[Update] = field(default_factory=list)
    last: float = 0.0
    closed: bool = False


@dataclass(frozen=True, slots=True)
class _FileSpec:
    file_id: str
    unique_id: str
    size: int | None
    kind: MediaKind
    mime_type: str | None
    file_name: str | None


class TelegramInbound:
    """Normalises updates for one bot; see the module docstring.

    Args:
        settings: The Telegram section of the config.
        media_dir: HERMES_HOME/media.
        deliver: Called with each finished event, in chat order.
        finished: Called with update ids once they need no further work.
        may_fetch: Asked before any file of a sender is downloaded; None lets everyone.
        retry: Called with update ids the gateway could not store (so they are fetched
            again, not confirmed); None finishes them like any other failure.
    """

    def __init__(
        self,
        settings: TelegramConfig,
        media_dir: Path,
        deliver: Deliver,
        finished: Finished,
        *,
        may_fetch: MayFetch | None = None,
        retry: Finished | None = None,
    ) -> None:
        self.settings = settings
        self._retry = retry
        self.media_dir = media_dir
        self._deliver = deliver
        self._finished = finished
        self._may_fetch = may_fetch
        self.bot: Bot | None = None
        self.me: BotIdentity | None = None
        self.thread_kinds: dict[tuple[str, str], bool] = {}
        """(chat id, thread id) -> True for a forum topic, False for a reply thread."""
        self._chains: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._albums: dict[tuple[int, str], _Album] = {}
        self._flush = asyncio.Event()

    def bind(self, bot: Bot, me: BotIdentity) -> None:
        self.bot, self.me = bot, me

    # -- intake --------------------------------------------------------------------
    def accept(self, update: Update) -> None:
        """Take one update (synchronously: PTB's order is kept); the work runs in tasks."""
        message = update.message
        if message is None or self.me is None:
            self._finished([update.update_id])  # edits, joins, callbacks...: not ours (yet)
            return
        problem = untrusted_ids(message)
        if problem is not None:
            log.warning("ignoring Telegram update %s: %s", update.update_id, problem)
            self._finished([update.update_id])
            return
        chat_id = message.chat_id
        group = message.media_group_id
        if group:
            key = (chat_id, group)
            album = self._albums.get(key)
            loop = asyncio.get_running_loop()
            if album is not None and not album.closed:
                album.updates.append(update)
                album.last = loop.time()
                return
            album = self._albums[key] = _Album([update], loop.time())
            self._chain(chat_id, lambda: self._finish_album(key, album))
            return
        self._chain(chat_id, lambda: self._process([update]))

    async def drain(self) -> None:
        """Close open albums at once and wait until every accepted update is handled."""
        self._flush.set()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._flush = asyncio.Event()

    @property
    def busy(self) -> int:
        """Updates (or albums) still being worked on."""
        return len(self._tasks)

    # -- ordering ------------------------------------------------------------------
    def _chain(self, chat_id: int, work: Callable[[], Awaitable[None]]) -> None:
        previous = self._chains.get(chat_id)

        async def run() -> None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            await work()

        task = asyncio.get_running_loop().create_task(run(), name=f"telegram-in:{chat_id}")
        self._chains[chat_id] = task
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._chains.get(chat_id) is t:
                del self._chains[chat_id]

        task.add_done_callback(done)

    async def _finish_album(self, key: tuple[int, str], album: _Album) -> None:
        loop = asyncio.get_running_loop()
        wait = self.settings.media_group_wait
        while not self._flush.is_set():
            remaining = album.last + wait - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._flush.wait(), remaining)
            except TimeoutError:
                pass
        album.closed = True
        if self._albums.get(key) is album:
            del self._albums[key]
        await self._process(album.updates)

    async def _process(self, updates: list[Update]) -> None:
        ids = [u.update_id for u in updates]
        try:
            event = await self.normalise(updates)
            if event is not None:
                await self._deliver(event, updates)
        except IntakeError:
            # Not stored: not confirmed either, Telegram sends it again (see UpdateLedger).
            if self._retry is not None:
                self._retry(ids)
                return
            log.error("a Telegram update could not be stored and will not be retried")
        except Exception:
            log.exception("could not handle a Telegram update")
        self._finished(ids)

    # -- normalisation -------------------------------------------------------------
    def source_for(self, message: Message) -> SessionSource:
        chat = message.chat
        user = message.from_user
        thread: str | None = None
        if message.message_thread_id is not None:
            thread = str(message.message_thread_id)
            self.thread_kinds[(str(chat.id), thread)] = bool(message.is_topic_message)
        if chat.type == "private":
            chat_name = chat.full_name or chat.username
        else:
            chat_name = chat.title or chat.username
        return SessionSource(
            platform=PLATFORM,
            chat_id=str(chat.id),
            chat_type=_CHAT_TYPES.get(chat.type, "group"),
            thread_id=thread,
            user_id=str(user.id) if user else None,
            user_name=(user.username or user.full_name) if user else None,
            chat_name=chat_name,
        )

    def addressed(self, message: Message) -> bool:
        """Whether a message is for this bot (DMs always are)."""
        me = self.me
        assert me is not None
        if message.chat.type == "private":
            return True
        text = message.text or message.caption or ""
        if text.startswith("/"):
            target = _command_target(text)
            return target is None or target.lower() == me.username.lower()
        if not self.settings.require_mention:
            return True
        reply = message.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.id == me.id:
            return True
        parsed = (
            message.parse_entities(["mention", "text_mention"])
            if message.text
            else message.parse_caption_entities(["mention", "text_mention"])
        )
        for entity, value in parsed.items():
            if entity.type == "mention" and value.lower() == f"@{me.username.lower()}":
                return True
            if entity.type == "text_mention" and entity.user and entity.user.id == me.id:
                return True
        return False

    def text_of(self, message: Message) -> str:
        """The message's text or caption, with the mention of this bot taken out."""
        text = message.text or message.caption or ""
        if self.me is None or text.startswith("/"):
            return text
        cleaned = re.sub(rf"(?i)(?<!\w)@{re.escape(self.me.username)}\b[,:]?", "", text)
        if cleaned == text:
            return text
        return re.sub(r"[ \t]{2,}", " ", cleaned).strip()

    async def normalise(self, updates: list[Update]) -> MessageEvent | None:
        """One event for one update, or for all updates of an album."""
        messages = [u.message for u in updates if u.message is not None]
        if not messages:
            return None
        first = messages[0]
        source = self.source_for(first)
        texts = [t for t in (self.text_of(m) for m in messages) if t.strip()]
        mentioned = any(self.addressed(m) for m in messages)
        media: list[MediaRef] = []
        notes: list[str] = []
        if mentioned and any(self._files(m) for m in messages):
            # Only now, and only for someone let in: the runner would drop the event anyway.
            if await self._fetch_allowed(source):
                downloads = await asyncio.gather(*(self._download(m, source) for m in messages))
                media = [ref for refs, _ in downloads for ref in refs]
                notes = [note for _, ns in downloads for note in ns]
            else:
                log.info("not downloading files from unauthorised user %s", hash_id(source.user_id))
                notes = [
                    f"[{spec.file_name or spec.kind} not downloaded]"
                    for m in messages
                    for spec in self._files(m)
                ]
        text = "\n\n".join([*texts, *notes])
        if not text.strip() and not media:
            return None  # a sticker, a service message, a group photo not for the bot...
        reply = first.reply_to_message
        return MessageEvent(
            text=text,
            source=source,
            message_id=str(first.message_id),
            reply_to_id=str(reply.message_id) if reply is not None else None,
            media=media,
            mentioned=mentioned,
        )

    async def _fetch_allowed(self, source: SessionSource) -> bool:
        if self._may_fetch is None:
            return True
        try:
            return await self._may_fetch(source)
        except Exception:
            log.exception("the access check before a Telegram download failed")
            return False

    # -- media ---------------------------------------------------------------------
    @staticmethod
    def _files(message: Message) -> list[_FileSpec]:
        specs: list[_FileSpec] = []
        if message.photo:
            p = message.photo[-1]  # the largest size
            specs.append(
                _FileSpec(p.file_id, p.file_unique_id, p.file_size, "image", "image/jpeg", None)
            )
        for attr, kind in _FILE_KINDS.items():
            obj: Any = getattr(message, attr, None)
            if obj is None:
                continue
            mime = getattr(obj, "mime_type", None)
            name = getattr(obj, "file_name", None)
            specs.append(
                _FileSpec(
                    obj.file_id,
                    obj.file_unique_id,
                    obj.file_size,
                    kind or kind_for(mime, name),
                    mime,
                    name,
                )
            )
        return specs

    async def _download(
        self, message: Message, source: SessionSource
    ) -> tuple[list[MediaRef], list[str]]:
        refs: list[MediaRef] = []
        notes: list[str] = []
        for spec in self._files(message):
            label = spec.file_name or spec.kind
            if spec.size is not None and spec.size > MAX_DOWNLOAD_BYTES:
                notes.append(f"[{label} is too large for a bot to download (over 20 MB)]")
                continue
            try:
                refs.append(await asyncio.wait_for(self._fetch(spec), DOWNLOAD_TIMEOUT))
            except Exception as exc:
                log.warning(
                    "could not download a %s from user %s: %s",
                    spec.kind,
                    hash_id(source.user_id),
                    exc,
                )
                notes.append(f"[{label} could not be downloaded: {exc or type(exc).__name__}]")
        return refs, notes

    async def _fetch(self, spec: _FileSpec) -> MediaRef:
        assert self.bot is not None
        tg_file = await self.bot.get_file(spec.file_id)
        data = bytes(await tg_file.download_as_bytearray())
        return await save_media(
            self.media_dir,
            data,
            platform=PLATFORM,
            unique_id=spec.unique_id,
            kind=spec.kind,
            file_name=spec.file_name,
            mime_type=spec.mime_type,
        )


def untrusted_ids(message: Message) -> str | None:
    """Why a message's ids cannot be trusted, or None when they can.

    Telegram sends ids as JSON integers and python-telegram-bot keeps whatever it was given,
    so ``"07"``, ``"7 "`` or a full-width ``"７"`` would reach us as strings that ``int()``
    later reads as chat 7 (someone else's chat). A private chat's id is always its user's id;
    a mismatch can only be forged.
    """
    chat, user = message.chat, message.from_user
    if chat is None:  # PTB keeps a message without one; its update must still be finished
        return "the message has no chat"
    if type(chat.id) is not int:
        return "the chat id is not an integer"
    if user is not None and type(user.id) is not int:
        return "the sender id is not an integer"
    if message.message_thread_id is not None and type(message.message_thread_id) is not int:
        return "the thread id is not an integer"
    if chat.type == "private" and (user is None or user.id != chat.id):
        return "a private chat whose id is not its sender's"
    return None


_REPORTED_MAX = 1024
_reported: dict[int, None] = {}
"""Update ids already logged as malformed: a batch is fetched again until every update in it
is handled, and the log should say it once."""


def _report_malformed(uid: int, exc: Exception) -> None:
    if uid in _reported:
        return
    _reported[uid] = None
    if len(_reported) > _REPORTED_MAX:
        del _reported[next(iter(_reported))]
    log.warning("skipping malformed Telegram update %s (%s: %s)", uid, type(exc).__name__, exc)


def screen_batch(payload: bytes) -> bytes:
    """A getUpdates answer in which every update PTB cannot parse is replaced by a bare one.

    Why: ``Bot.get_updates`` parses the batch in one go; one bad update (a message without a
    ``date``, say) makes it raise, PTB's updater then drops the whole batch without moving
    the offset and fetches the same batch again, forever. A bare ``{"update_id": n}`` parses,
    carries nothing (the adapter just confirms it) and moves the offset past ``n``, so the
    updates after it are processed. An update without an integer id cannot be confirmed by
    any offset, so it is left out. Each skipped update is logged (by id, not content).
    Anything that is not a successful getUpdates answer is returned untouched for PTB.
    """
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(data, dict) or data.get("ok") is not True:
        return payload
    batch = data.get("result")
    if not isinstance(batch, list):
        return payload
    kept: list[Any] = []
    for item in batch:
        uid = item.get("update_id") if isinstance(item, dict) else None
        if type(uid) is not int:
            log.warning("dropping a Telegram update without an integer update_id")
            continue
        try:
            Update.de_json(item, None)
        except Exception as exc:
            _report_malformed(uid, exc)
            item = {"update_id": uid}
        kept.append(item)
    if len(kept) == len(batch) and all(a is b for a, b in zip(kept, batch, strict=True)):
        return payload  # the usual case: PTB gets the bytes it would have got
    data["result"] = kept
    return json.dumps(data).encode()


def _command_target(text: str) -> str | None:
    """``bot`` for ``/cmd@bot args``; None for a bare ``/cmd``."""
    head = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
    _, at, target = head.partition("@")
    return target if at else None
