"""Turning Mattermost posts into the gateway's ``MessageEvent``.

Where the bot answers is decided here, because only Mattermost knows what "addressed" means:

* direct messages (channel type ``D``): always;
* group messages and channels (``G``, ``O``, ``P``): when the bot is @-mentioned, in a
  ``free_response_channels`` channel, in a thread the bot already takes part in, or always
  when ``require_mention`` is off; with ``allowed_channels`` set, other channels are not
  for any session at all;
* a post with a ``root_id`` belongs to that thread, which is its own session (the thread
  id is the root post's id); with ``reply_mode: thread`` a mention in a channel opens a
  thread under the post.

Posts arrive twice by design (the websocket, then the catch-up after a reconnect), so every
post id is handed over once. The bot's own posts and system posts (``type`` set) are skipped.
Mattermost's web client treats ``/word`` as its own slash command, so users type `` /word``
(leading space) to reach the bot's commands: the space is dropped here.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import MattermostConfig
from hermes_gateway.models import ChatType, MediaRef, MessageEvent, SessionSource

__all__ = ["Directory", "MattermostInbound", "PostContext"]

log = logging.getLogger(__name__)

_SEEN_MAX = 8192
_FOLLOWED_MAX = 10_000


@dataclass(frozen=True)
class PostContext:
    """What the websocket event says beside the post (looked up for fetched posts)."""

    channel_type: str
    sender_name: str
    channel_name: str = ""
    mentions: tuple[str, ...] = ()


class Directory:
    """Lookups the inbound side needs (channel type and name, user names), cached."""

    def __init__(
        self,
        channel: Callable[[str], Awaitable[dict[str, Any]]],
        user: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> None:
        self._channel, self._user = channel, user
        self.channels: dict[str, dict[str, Any]] = {}
        self.users: dict[str, str] = {}

    def remember(self, channel: dict[str, Any]) -> None:
        self.channels[str(channel["id"])] = channel

    async def context(self, post: dict[str, Any]) -> PostContext:
        channel_id, user_id = str(post.get("channel_id", "")), str(post.get("user_id", ""))
        chan = self.channels.get(channel_id)
        if chan is None:
            chan = await self._channel(channel_id)
            self.remember(chan)
        name = self.users.get(user_id)
        if name is None:
            user = await self._user(user_id)
            name = self.users[user_id] = str(user.get("username") or user_id)
        return PostContext(
            str(chan.get("type", "O")), name, str(chan.get("display_name") or chan.get("name", ""))
        )


def event_context(data: dict[str, Any]) -> PostContext:
    """The context carried by a ``posted`` websocket event's ``data``."""
    mentions: tuple[str, ...] = ()
    raw = data.get("mentions")
    if isinstance(raw, str) and raw:
        try:
            parsed = json.loads(raw)
            if isinstance(parsed, list):
                mentions = tuple(str(m) for m in parsed)
        except ValueError:
            pass
    return PostContext(
        str(data.get("channel_type", "O")),
        str(data.get("sender_name", "")).lstrip("@"),
        str(data.get("channel_display_name") or data.get("channel_name") or ""),
        mentions,
    )


class MattermostInbound:
    """Normalises posts for one bot; keeps the threads it follows and the ids it saw."""

    def __init__(
        self,
        config: MattermostConfig,
        policy: AccessPolicy,
        save_files: Callable[[list[str]], Awaitable[list[MediaRef]]],
    ) -> None:
        self.config = config
        self.policy = policy
        self.save_files = save_files
        self.bot_id = ""
        self.bot_name = ""
        self.followed: OrderedDict[str, None] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()

    def follow(self, root_id: str) -> None:
        """Answer every message of this thread from now on."""
        self.followed[root_id] = None
        self.followed.move_to_end(root_id)
        while len(self.followed) > _FOLLOWED_MAX:
            self.followed.popitem(last=False)

    def first_time(self, post_id: str) -> bool:
        """True once per post id (marks it seen)."""
        if post_id in self._seen:
            return False
        self._seen[post_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        return True

    def _mention_re(self) -> re.Pattern[str]:
        return re.compile(rf"(?<![\w.-])@{re.escape(self.bot_name)}(?![\w-])", re.IGNORECASE)

    def addressed(self, post: dict[str, Any], ctx: PostContext) -> bool:
        if self.bot_id and self.bot_id in ctx.mentions:
            return True
        return bool(self.bot_name) and bool(self._mention_re().search(post.get("message", "")))

    def clean_text(self, text: str) -> str:
        """The text without the bot's @-mention; a command typed as `` /cmd`` made ``/cmd``."""
        if self.bot_name:
            text = self._mention_re().sub("", text)
        text = text.strip()
        return text

    def _in(self, channel_id: str, names: list[str]) -> bool:
        return "*" in names or channel_id in names

    def source(self, post: dict[str, Any], ctx: PostContext, addressed: bool) -> SessionSource:
        """Where a post came from: DM, group, channel, or a thread of one."""
        channel_id = str(post.get("channel_id", ""))
        root = str(post.get("root_id") or "")
        user_id, name = str(post.get("user_id", "")), ctx.sender_name or None
        chat_type: ChatType
        if ctx.channel_type == "D":
            chat_type = "dm"
        elif root:
            chat_type = "thread"
        elif self.config.reply_mode == "thread" and addressed:
            chat_type, root = "thread", str(post.get("id", ""))
        else:
            chat_type = "group" if ctx.channel_type == "G" else "channel"
        chat_name = ctx.channel_name or None
        if ctx.channel_type != "D" and chat_name and not chat_name.startswith("~"):
            chat_name = f"~{chat_name}"
        return SessionSource(
            "mattermost", channel_id, chat_type, root or None, user_id, name, chat_name
        )

    async def normalize(self, post: dict[str, Any], ctx: PostContext) -> MessageEvent | None:
        """The event for a post, or None when it is for no session at all.

        Call :meth:`first_time` first (synchronously, before any await) so that the same
        post arriving by two roads is taken once.
        """
        if not self.bot_id or post.get("user_id") == self.bot_id or post.get("type"):
            return None
        channel_id = str(post.get("channel_id", ""))
        addressed = self.addressed(post, ctx)
        if ctx.channel_type == "D":
            mentioned = True
        else:
            allowed = self.config.allowed_channels
            if allowed and not self._in(channel_id, allowed):
                return None
            root = str(post.get("root_id") or "")
            mentioned = (
                addressed
                or not self.config.require_mention
                or self._in(channel_id, self.config.free_response_channels)
                or (bool(root) and root in self.followed)
            )
        source = self.source(post, ctx, addressed)
        allowed_user = await self.policy.is_allowed(source)
        if addressed and source.thread_id and allowed_user:
            self.follow(source.thread_id)
        media: list[MediaRef] = []
        file_ids = [str(f) for f in post.get("file_ids") or []]
        if file_ids and mentioned and allowed_user:
            media = await self.save_files(file_ids)
        text = str(post.get("message", ""))
        text = self.clean_text(text) if ctx.channel_type != "D" else text.strip()
        return MessageEvent(
            text=text,
            source=source,
            message_id=str(post.get("id", "")),
            reply_to_id=str(post.get("root_id") or "") or None,
            media=media,
            mentioned=mentioned,
        )
