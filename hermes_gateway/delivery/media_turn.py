"""Files the agent hands over: ``MEDIA:/path`` lines of an answer become uploads.

Shared by the platforms that can upload (Discord, Slack): the streamed answer is delivered
without those lines and each named file is uploaded after it, through the platform's own
``send_file``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from hermes_gateway.delivery.errors import DeliveryError
from hermes_gateway.delivery.stream_consumer import StreamingTurn

__all__ = ["MediaTurn", "extract_media"]

log = logging.getLogger(__name__)

_MEDIA_RE = re.compile(r"^[ \t]*MEDIA:[ \t]*(\S[^\n]*?)[ \t]*$", re.MULTILINE)


def _existing_files(candidates: list[str]) -> list[Path]:
    found = []
    for raw in candidates:
        path = Path(raw.strip("`'\"<>")).expanduser()
        if path.is_file():
            found.append(path)
    return found


async def extract_media(text: str) -> tuple[str, list[Path]]:
    """Split ``MEDIA:/path`` lines (files the agent wants to hand over) from the answer.

    Only lines naming an existing file are taken out; anything else stays in the text, so a
    model that merely talks about "MEDIA:" loses nothing.
    """
    if "MEDIA:" not in text:
        return text, []
    matches = _MEDIA_RE.findall(text)
    paths = await asyncio.to_thread(_existing_files, matches)
    if not paths:
        return text, []
    names = {str(p) for p in paths}

    def drop(m: re.Match[str]) -> str:
        path = str(Path(m.group(1).strip("`'\"<>")).expanduser())
        return "" if path in names else m.group(0)

    cleaned = re.sub(r"\n{3,}", "\n\n", _MEDIA_RE.sub(drop, text)).strip()
    return cleaned, paths


class MediaTurn:
    """A streamed answer whose ``MEDIA:/path`` lines become uploaded files when it is final."""

    def __init__(
        self,
        streaming: StreamingTurn,
        chat: str,
        *,
        send_file: Callable[[str, Path], Awaitable[None]],
    ) -> None:
        self._streaming = streaming
        self._chat = chat
        self._send_file = send_file

    def on_delta(self, text: str) -> None:
        self._streaming.on_delta(text)

    def on_tool_started(self, name: str, preview: str) -> None:
        self._streaming.on_tool_started(name, preview)

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        self._streaming.on_tool_finished(name, ok, duration, summary)

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        body, files = await extract_media(text)
        try:
            await self._streaming.finish(body, interrupted=interrupted, error=error)
        finally:
            for path in files:
                try:
                    await self._send_file(self._chat, path)
                except DeliveryError as exc:
                    log.warning("could not upload %s to %s: %s", path.name, self._chat, exc)
