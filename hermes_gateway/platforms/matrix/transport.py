"""Send, edit (``m.replace``), upload and typing for the shared delivery code.

A delivery target is one string, ``chat`` or ``chat:thread``, where both parts are Matrix ids
escaped by :func:`~hermes_gateway.config.matrix_chat_id` (so the ``:`` between them is ours):
the rate gate keys a thread apart from its room and the stream consumer needs to know
nothing of threads.

Each message carries the Markdown as the plain ``body`` and its HTML as ``formatted_body``.
An event may hold 64 KiB of JSON in all: chunks are measured in UTF-8 bytes, and a message
whose HTML would not fit goes out as plain text (an edit first drops the HTML of its
fallback, then its own). A streamed edit is an ``m.replace`` event whose ``m.new_content``
is the whole new message, with ``* text`` as the fallback body, per the spec.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
from pathlib import Path
from typing import Any

from hermes_gateway.config import matrix_id
from hermes_gateway.delivery.errors import DeliveryError
from hermes_gateway.platforms.matrix.client import MatrixClient
from hermes_gateway.platforms.matrix.html import markdown_to_html, quiet

__all__ = [
    "EVENT_BUDGET",
    "MAX_UPLOAD_BYTES",
    "MatrixTransport",
    "split_target",
    "target_for",
]

EVENT_BUDGET = 60_000
"""Bytes of content one event may use (the spec's limit is 65536 for the whole event)."""
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Synapse's default max_upload_size; more than a chat answer needs."""
HTML = "org.matrix.custom.html"


def target_for(chat_id: str, thread_id: str | None) -> str:
    return f"{chat_id}:{thread_id}" if thread_id else chat_id


def split_target(target: str) -> tuple[str, str]:
    """``(room id, thread root event id or "")`` of a target, unescaped."""
    chat, _, thread = target.partition(":")
    return matrix_id(chat), matrix_id(thread) if thread else ""


def _size(content: dict[str, Any]) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode())


def message_content(text: str) -> dict[str, Any]:
    """``m.text`` with the Markdown as ``body`` and its HTML (when it fits the event)."""
    body = quiet(text)
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": body,
        "format": HTML,
        "formatted_body": markdown_to_html(body),
    }
    if _size(content) > EVENT_BUDGET:
        content = {"msgtype": "m.text", "body": body}
    return content


def thread_relation(root: str) -> dict[str, Any]:
    """In the thread under ``root`` (with the reply fallback for clients without threads)."""
    return {
        "rel_type": "m.thread",
        "event_id": root,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": root},
    }


def edit_content(event_id: str, text: str) -> dict[str, Any]:
    """An ``m.replace`` of ``event_id`` whose new content is ``text``."""
    new = message_content(text)
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": f"* {new['body']}",
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }
    if _size(content) > EVENT_BUDGET:
        new.pop("format", None)
        new.pop("formatted_body", None)
    if _size(content) > EVENT_BUDGET:
        content["body"] = "* (edited)"
    return content


class MatrixTransport:
    """:class:`~hermes_gateway.delivery.MessageTransport` for Matrix."""

    def __init__(self, client: MatrixClient, limit: int) -> None:
        self.client = client
        self.limit = limit

    def measure(self, text: str) -> int:
        """UTF-8 bytes, after ``@room`` is defused (an event's limit is in bytes)."""
        return len(quiet(text).encode())

    async def send_text(self, chat: str, text: str) -> str:
        room, root = split_target(chat)
        content = message_content(text)
        if root:
            content["m.relates_to"] = thread_relation(root)
        return await self.client.send(room, content)

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        room, _root = split_target(chat)
        await self.client.send(room, edit_content(message_id, text), op="edit")

    async def send_file(self, chat: str, path: Path, caption: str = "") -> str:
        """Upload one file (read off the loop), then the message that shows it."""
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > MAX_UPLOAD_BYTES:
            raise DeliveryError(f"{path.name} is larger than the upload limit")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        uri = await self.client.upload(data, mime, path.name)
        kind = mime.split("/", 1)[0]
        msgtype = {"image": "m.image", "audio": "m.audio", "video": "m.video"}.get(kind, "m.file")
        room, root = split_target(chat)
        content: dict[str, Any] = {
            "msgtype": msgtype,
            "body": quiet(caption) if caption else path.name,
            "filename": path.name,
            "url": uri,
            "info": {"mimetype": mime, "size": len(data)},
        }
        if root:
            content["m.relates_to"] = thread_relation(root)
        return await self.client.send(room, content)

    async def typing(self, chat: str, on: bool = True) -> None:
        room, _root = split_target(chat)
        await self.client.typing(room, on)
