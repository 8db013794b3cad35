"""Files the agent hands over: ``MEDIA:/path`` lines of an answer become uploads.

Shared by the platforms that can upload (Discord, Slack, Mattermost, Matrix, Signal,
WhatsApp; wired by :mod:`hermes_gateway.delivery.answer_turn`): the streamed answer is
delivered without those lines, then each named file that the platform's ``refusal`` lets go
(a remote chat's files stay inside its workspace) is sent into the chat.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from hermes_gateway.agent.tools.boundary import boundary_for
from hermes_gateway.delivery.errors import DeliveryError
from hermes_gateway.platforms.base import TurnDelivery

__all__ = ["MediaTurn", "extract_media", "workspace_refusal"]

log = logging.getLogger(__name__)

_MEDIA_RE = re.compile(r"^[ \t]*MEDIA:[ \t]*(\S[^\n]*?)[ \t]*$", re.MULTILINE)


Refusal = Callable[[Path], "str | None"]
"""Why a file may not leave (None: it may). Blocking: it may resolve links."""


def workspace_refusal(home: Path, platform: str, session_key: str) -> Refusal:
    """The file tools' boundary for a chat, applied to what its answers upload: a remote
    chat's answer never carries HERMES_HOME's credentials or another chat's files (a
    prompt-injected model would otherwise send ``.env`` into the chat)."""
    boundary = boundary_for(home, platform, session_key)
    return lambda path: boundary.refusal(path, write=False)


def _existing_files(candidates: list[str], refusal: Refusal | None) -> list[Path]:
    found = []
    for raw in candidates:
        path = Path(raw.strip("`'\"<>")).expanduser()
        if not path.is_file():
            continue
        why = refusal(path) if refusal is not None else None
        if why is not None:
            log.warning("not uploading a file the answer named: %s", why)
            continue
        found.append(path)
    return found


async def extract_media(text: str, refusal: Refusal | None = None) -> tuple[str, list[Path]]:
    """Split ``MEDIA:/path`` lines (files the agent wants to hand over) from the answer.

    Only lines naming an existing file that ``refusal`` lets go are taken out; anything else
    stays in the text, so a model that merely talks about "MEDIA:" loses nothing.
    """
    if "MEDIA:" not in text:
        return text, []
    matches = _MEDIA_RE.findall(text)
    paths = await asyncio.to_thread(_existing_files, matches, refusal)
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
        streaming: TurnDelivery,
        chat: str,
        *,
        send_file: Callable[[str, Path], Awaitable[None]],
        refusal: Refusal,
    ) -> None:
        self._refusal = refusal
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
        body, files = await extract_media(text, self._refusal)
        try:
            await self._streaming.finish(body, interrupted=interrupted, error=error)
        finally:
            for path in files:
                try:
                    await self._send_file(self._chat, path)
                except DeliveryError as exc:
                    log.warning("could not upload %s to %s: %s", path.name, self._chat, exc)
