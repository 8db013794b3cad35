"""Send, edit, upload and typing over Mattermost's REST API, for the shared delivery code.

A delivery target is one string, ``channel_id`` or ``channel_id:root_id`` (Mattermost ids
never hold a colon), so the rate gate keys a thread apart from its channel and the stream
consumer needs to know nothing of threads.

Markdown: Mattermost renders the Markdown models write (fences, tables, lists) as it is,
and never refuses a post for its markup, so there is no "formatting rejected" road to fall
back from. One thing is changed: ``@channel``, ``@all`` and ``@here`` would notify everyone
in the channel, so a zero-width space keeps the model's text from pinging them (like
Discord's allowed mentions). Streaming edits go through ``PUT /posts/{id}/patch``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from hermes_gateway.delivery.errors import DeliveryError
from hermes_gateway.platforms.mattermost.api import DEFAULT_POST_LIMIT, MattermostApi

__all__ = ["MAX_UPLOAD_BYTES", "MattermostTransport", "quiet", "split_target", "target_for"]

_CHANNEL_WIDE = re.compile(r"(?<![\w@])@(channel|all|here)\b", re.IGNORECASE)


def quiet(text: str) -> str:
    """The text with channel-wide mentions defused (shown the same, notifying nobody)."""
    return _CHANNEL_WIDE.sub("@\u200b\\1", text)


MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Mattermost's default MaxFileSize (100 MB) is more than a chat answer needs."""


def target_for(channel_id: str, root_id: str | None) -> str:
    return f"{channel_id}:{root_id}" if root_id else channel_id


def split_target(target: str) -> tuple[str, str]:
    channel, _, root = target.partition(":")
    return channel, root


class MattermostTransport:
    """:class:`~hermes_gateway.delivery.MessageTransport` for Mattermost.

    ``limit`` starts at the server default and is set from the server's client config once
    connected.
    """

    def __init__(self, api: MattermostApi, limit: int = DEFAULT_POST_LIMIT) -> None:
        self.api = api
        self.limit = limit

    def measure(self, text: str) -> int:
        """Mattermost counts characters (runes), after the mentions are defused."""
        return len(quiet(text))

    async def send_text(self, chat: str, text: str) -> str:
        channel, root = split_target(chat)
        post = await self.api.create_post(channel, quiet(text), root_id=root)
        return str(post["id"])

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        await self.api.patch_post(message_id, quiet(text))

    async def send_file(self, chat: str, path: Path, caption: str = "") -> str:
        """Upload one file (read off the loop), then a post that carries it."""
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > MAX_UPLOAD_BYTES:
            raise DeliveryError(f"{path.name} is larger than the upload limit")
        channel, root = split_target(chat)
        file_id = await self.api.upload_file(channel, path.name, data)
        post = await self.api.create_post(
            channel, quiet(caption)[: self.limit], root_id=root, file_ids=[file_id]
        )
        return str(post["id"])

    async def typing(self, chat: str) -> None:
        channel, root = split_target(chat)
        await self.api.typing(channel, root)
