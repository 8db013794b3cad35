"""Turning discord.py messages into the gateway's ``MessageEvent``.

Where the bot answers is decided here, because only Discord knows what "addressed" means:

* DMs: always.
* Guild channels: when the bot is mentioned (its user, or its managed role, which Discord
  sometimes autocompletes instead) or a message of the bot is replied to; every message
  when ``require_mention`` is off.
* Threads: like channels, and once an allowed user has addressed the bot in a thread (or
  the bot opened it), every later message there is for the bot: people do not keep
  mentioning a bot they are already talking to.

Hermes Agent's channel lists apply: with ``allowed_channels`` set, messages in other guild
channels (and their threads) are not for any session at all; in ``free_response_channels``
every message is addressed, mention or not. DMs are not affected by either.

Messages that are not addressed still become events with ``mentioned=False`` (the runner
drops them), so the decision stays visible in one place. The bot's own messages (Discord
echoes them), other bots and system messages are ignored outright, and a message id seen
before (a gateway replay) is never handed over twice.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import discord

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import DiscordConfig
from hermes_gateway.models import ChatType, MediaRef, MessageEvent, SessionSource

__all__ = ["DiscordInbound", "source_for"]

log = logging.getLogger(__name__)

SaveAttachment = Callable[[discord.Attachment], Awaitable[MediaRef | None]]

_SEEN_MAX = 4096
_FOLLOWED_MAX = 10_000
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_CONVERSATION = (discord.MessageType.default, discord.MessageType.reply)


def _user_name(user: discord.abc.User) -> str:
    return getattr(user, "display_name", None) or user.name


def source_for(channel: object, user: discord.abc.User) -> SessionSource | None:
    """Where a message (or slash command) came from; None for channels we do not serve.

    A thread's session is keyed by its parent channel plus the thread id, so a channel and
    each of its threads are separate conversations; replies go to the thread itself.
    """
    user_id, user_name = str(user.id), _user_name(user)
    chat_type: ChatType
    thread_id: str | None = None
    if isinstance(channel, discord.DMChannel):
        return SessionSource("discord", str(channel.id), "dm", None, user_id, user_name)
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        chat_type, thread_id = "thread", str(channel.id)
        chat_id = str(channel.parent_id)
        where = f"#{parent.name} › {channel.name}" if parent is not None else channel.name
        guild = channel.guild.name if channel.guild else ""
    elif isinstance(channel, discord.abc.GuildChannel) and isinstance(
        channel, discord.abc.Messageable
    ):
        chat_type, chat_id = "channel", str(channel.id)
        where, guild = f"#{channel.name}", channel.guild.name
    elif isinstance(channel, discord.PartialMessageable):
        # Not in the cache (it should be after READY); answer it as a plain channel.
        if channel.guild_id is None:
            return SessionSource("discord", str(channel.id), "dm", None, user_id, user_name)
        chat_type, chat_id, where, guild = "channel", str(channel.id), f"#{channel.id}", ""
    else:
        return None
    name = f"{where} ({guild})" if guild else where
    return SessionSource("discord", chat_id, chat_type, thread_id, user_id, user_name, name)


def roles_of(user: object) -> tuple[str, ...]:
    """A member's role ids (including @everyone, whose id is the guild's)."""
    if isinstance(user, discord.Member):
        return tuple(str(role.id) for role in user.roles)
    return ()


class DiscordInbound:
    """Normalises messages for one bot; keeps the threads it follows and the ids it saw."""

    def __init__(
        self, config: DiscordConfig, policy: AccessPolicy, save_attachment: SaveAttachment
    ) -> None:
        self.config = config
        self.policy = policy
        self.save_attachment = save_attachment
        self.bot_id: int | None = None
        self.followed: OrderedDict[int, None] = OrderedDict()
        self._seen: OrderedDict[int, None] = OrderedDict()

    def follow(self, thread_id: int) -> None:
        """Answer every message of this thread from now on."""
        self.followed[thread_id] = None
        self.followed.move_to_end(thread_id)
        while len(self.followed) > _FOLLOWED_MAX:
            self.followed.popitem(last=False)

    def _first_time(self, message_id: int) -> bool:
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        return True

    def _addressed(self, message: discord.Message) -> bool:
        """Explicitly for the bot: a mention of it (or its role) or a reply to it."""
        bot_id = self.bot_id
        if bot_id in message.raw_mentions:
            return True
        guild = message.guild
        me = guild.me if guild is not None else None
        if me is not None and message.raw_role_mentions:
            own = {role.id for role in me.roles if role.managed}
            if own.intersection(message.raw_role_mentions):
                return True
        ref = message.reference
        resolved = ref.resolved if ref is not None else None
        return isinstance(resolved, discord.Message) and resolved.author.id == bot_id

    @staticmethod
    def _channel_ids(channel: object) -> set[str]:
        """The channel's id and, for a thread, its parent's: a list naming a channel covers
        the threads in it."""
        ids = {str(getattr(channel, "id", ""))}
        parent = getattr(channel, "parent_id", None)
        if parent:
            ids.add(str(parent))
        return ids

    def listens_in(self, channel: object) -> bool:
        """False for a guild channel outside ``allowed_channels`` (when that list is set)."""
        allowed = self.config.allowed_channels
        return not allowed or "*" in allowed or bool(self._channel_ids(channel) & set(allowed))

    def free_response(self, channel: object) -> bool:
        """Whether every message in ``channel`` is for the bot (``free_response_channels``)."""
        free = self.config.free_response_channels
        return "*" in free or bool(self._channel_ids(channel) & set(free))

    def _following(self, channel: object) -> bool:
        return isinstance(channel, discord.Thread) and (
            channel.id in self.followed or channel.owner_id == self.bot_id
        )

    def clean_text(self, message: discord.Message) -> str:
        """The text without the bot's mention; other mentions as readable ``@names``."""
        names = {user.id: _user_name(user) for user in message.mentions}
        bot_id = self.bot_id

        def user(m: re.Match[str]) -> str:
            uid = int(m.group(1))
            if uid == bot_id:
                return ""
            return f"@{names[uid]}" if uid in names else m.group(0)

        text = _USER_MENTION.sub(user, message.content)
        me = message.guild.me if message.guild is not None else None
        if me is not None:
            own = {str(role.id) for role in me.roles if role.managed}
            text = _ROLE_MENTION.sub(lambda m: "" if m.group(1) in own else m.group(0), text)
        return text.strip()

    async def normalize(self, message: discord.Message) -> MessageEvent | None:
        """The event for a message, or None when it is not for any session at all."""
        author = message.author
        if self.bot_id is None or author.id == self.bot_id or author.bot:
            return None
        if message.type not in _CONVERSATION or not self._first_time(message.id):
            return None
        source = source_for(message.channel, author)
        if source is None:
            return None
        roles = roles_of(author)
        if source.chat_type == "dm":
            mentioned = True
        else:
            if not self.listens_in(message.channel):
                return None
            addressed = self._addressed(message)
            mentioned = (
                addressed
                or not self.config.require_mention
                or self.free_response(message.channel)
                or self._following(message.channel)
            )
            if addressed and source.chat_type == "thread":
                if await self.policy.is_allowed(source, roles):
                    self.follow(message.channel.id)
        media: list[MediaRef] = []
        if message.attachments and mentioned and await self.policy.is_allowed(source, roles):
            for attachment in message.attachments:
                ref = await self.save_attachment(attachment)
                if ref is not None:
                    media.append(ref)
        ref_id = message.reference.message_id if message.reference is not None else None
        return MessageEvent(
            text=self.clean_text(message),
            source=source,
            message_id=str(message.id),
            reply_to_id=str(ref_id) if ref_id else None,
            media=media,
            mentioned=mentioned,
            roles=roles,
        )
