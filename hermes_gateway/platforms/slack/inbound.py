"""Which Slack messages are for the bot, and the :class:`MessageEvent` each one becomes.

Sessions: a DM is one session; a channel message the bot answers starts a thread under it
(``reply_in_thread``, Hermes Agent's default), and every thread is its own session
(``thread_ts`` is the thread id). In channels the bot answers a mention of it, every message
of a thread it was mentioned in (it follows that thread), and everything in
``free_response_channels`` or when ``require_mention`` is off.

Slack delivers an event again when it thinks the acknowledgement was lost (same
``event_id``, ``retry_attempt`` raised); those and any message seen before (same channel and
``ts``) are dropped here, and the runner's inbox refuses a repeated message id as well.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import SlackConfig
from hermes_gateway.models import ChatType, MediaRef, MessageEvent, SessionSource
from hermes_gateway.platforms.slack.mrkdwn import from_slack

__all__ = ["SlackInbound"]

_SEEN_MAX = 4096
_FOLLOWED_MAX = 2048
_SKIPPED_SUBTYPES = frozenset(
    {
        "bot_message",
        "message_changed",
        "message_deleted",
        "message_replied",
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "group_join",
        "group_leave",
        "ekm_access_denied",
    }
)

SaveFile = Callable[[dict[str, Any]], Awaitable[MediaRef | None]]
UserName = Callable[[str], Awaitable[str | None]]


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember ``key``; False if it was already known."""
        if key in self._d:
            self._d.move_to_end(key)
            return False
        self._d[key] = None
        if len(self._d) > self.size:
            self._d.popitem(last=False)
        return True

    def __contains__(self, key: str) -> bool:
        return key in self._d

    def discard(self, key: str) -> None:
        self._d.pop(key, None)


class SlackInbound:
    """Normalises Slack message events for one bot."""

    def __init__(
        self,
        config: SlackConfig,
        policy: AccessPolicy,
        save_file: SaveFile,
        user_name: UserName,
    ) -> None:
        self.config = config
        self.policy = policy
        self.save_file = save_file
        self.user_name = user_name
        self.bot_user: str = ""
        self.followed = _Lru(_FOLLOWED_MAX)
        self._events = _Lru(_SEEN_MAX)
        self._messages = _Lru(_SEEN_MAX)

    def first_delivery(self, event_id: str) -> bool:
        """False for an event delivered before (a Slack retry)."""
        return not event_id or self._events.add(event_id)

    def forget(self, event_id: str, event: MessageEvent) -> None:
        """The gateway could not take ``event``: let Slack's next delivery of it through."""
        self._events.discard(event_id)
        if event.message_id:
            self._messages.discard(event.message_id)

    def listens_in(self, channel: str) -> bool:
        allowed = self.config.allowed_channels
        return not allowed or "*" in allowed or channel in allowed

    def free_response(self, channel: str) -> bool:
        free = self.config.free_response_channels
        return "*" in free or channel in free

    def source(
        self, channel: str, channel_type: str, user: str, name: str | None, thread: str | None
    ) -> SessionSource:
        chat_type: ChatType
        if channel_type == "im" or channel.startswith("D"):
            chat_type = "dm"
        elif thread:
            chat_type = "thread"
        elif channel_type == "mpim":
            chat_type = "group"
        else:
            chat_type = "channel"
        return SessionSource("slack", channel, chat_type, thread, user, name, None)

    async def normalize(self, event: dict[str, Any]) -> MessageEvent | None:
        """The event for a Slack ``message`` event, or None when it is for no session."""
        subtype = event.get("subtype")
        user = event.get("user")
        channel = event.get("channel")
        ts = event.get("ts")
        if subtype in _SKIPPED_SUBTYPES or event.get("bot_id") or not user or not channel:
            return None
        if not isinstance(user, str) or not isinstance(channel, str) or not isinstance(ts, str):
            return None
        if user == self.bot_user or not self._messages.add(f"{channel}:{ts}"):
            return None
        channel_type = str(event.get("channel_type") or "")
        raw = str(event.get("text") or "")
        thread = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else None
        is_dm = channel_type == "im" or channel.startswith("D")
        mention = f"<@{self.bot_user}>" if self.bot_user else None
        addressed = bool(mention and mention in raw)
        if is_dm:
            mentioned = True
        else:
            if not self.listens_in(channel):
                return None
            in_followed = bool(thread) and f"{channel}:{thread}" in self.followed
            mentioned = (
                addressed
                or not self.config.require_mention
                or self.free_response(channel)
                or in_followed
            )
            if mentioned and not thread and self.config.reply_in_thread:
                thread = ts  # the answer starts a thread under the message: its own session
        name = await self.user_name(user) if mentioned else None
        source = self.source(channel, channel_type, user, name, thread)
        if addressed and thread and await self.policy.is_allowed(source):
            self.followed.add(f"{channel}:{thread}")  # its replies need no mention
        text = raw.replace(mention, "") if mention else raw
        text = from_slack(text).strip()
        media: list[MediaRef] = []
        files = event.get("files")
        if files and mentioned and await self.policy.is_allowed(source):
            for f in files if isinstance(files, list) else []:
                if isinstance(f, dict):
                    ref = await self.save_file(f)
                    if ref is not None:
                        media.append(ref)
        return MessageEvent(
            text=text,
            source=source,
            message_id=f"{channel}:{ts}",
            reply_to_id=thread if thread and thread != ts else None,
            media=media,
            mentioned=mentioned,
        )
