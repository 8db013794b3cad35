"""Files users send: kept under HERMES_HOME/media, and shown to the model.

Adapters download what a user attaches and save it here, so the agent's tools can open the
file by path and the transcript keeps pointing at something that still exists after the
platform's download link expires. When a turn is sent to the model, images become OpenAI
``image_url`` parts (a data URL, because a local path means nothing to a remote model) and
every other file is named by its path, which the agent's file tools can read.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hermes_gateway.models import MediaKind, MediaRef

__all__ = [
    "MAX_INLINE_IMAGE_BYTES",
    "build_user_content",
    "kind_for",
    "save_media",
]

MAX_INLINE_IMAGE_BYTES = 10 * 1024 * 1024
"""Larger images are named by path instead of inlined (providers cap request sizes)."""

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

_KIND_BY_MAJOR: dict[str, MediaKind] = {"image": "image", "audio": "audio", "video": "video"}

MediaItem = MediaRef | str | Mapping[str, Any]
"""What a turn may carry: a :class:`MediaRef`, a stored path, or a stored dict."""


def kind_for(mime_type: str | None, file_name: str | None = None) -> MediaKind:
    """The :class:`MediaRef` kind for a MIME type (guessed from the name when missing)."""
    mime = mime_type or (mimetypes.guess_type(file_name)[0] if file_name else None) or ""
    return _KIND_BY_MAJOR.get(mime.split("/", 1)[0], "document")


def _safe_part(text: str, limit: int = 80) -> str:
    cleaned = _SAFE.sub("_", text).strip("._")
    return cleaned[:limit]


def _suffix(file_name: str | None, mime_type: str | None, kind: str) -> str:
    if file_name and "." in file_name:
        suffix = "." + _safe_part(file_name.rsplit(".", 1)[1], 10)
        if suffix != ".":
            return suffix.lower()
    guessed = mimetypes.guess_extension(mime_type) if mime_type else None
    if guessed:
        return ".jpg" if guessed == ".jpe" else guessed
    return ".jpg" if kind == "image" else ".bin"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def save_media(
    media_dir: Path,
    data: bytes,
    *,
    platform: str,
    unique_id: str,
    kind: MediaKind | None = None,
    file_name: str | None = None,
    mime_type: str | None = None,
) -> MediaRef:
    """Save one downloaded file under ``media_dir/<platform>/<date>/`` and describe it.

    The name starts with the platform's unique file id, so the same file sent twice is
    stored once, and only ever contains safe characters (a user-chosen ``file_name`` cannot
    climb out of the folder). The write happens in a thread and is atomic, so a reader never
    sees half a file.
    """
    kind = kind or kind_for(mime_type, file_name)
    stem = _safe_part(unique_id) or f"file{time.monotonic_ns()}"
    if file_name:
        base = _safe_part(file_name.rsplit(".", 1)[0], 60)
        if base:
            stem = f"{stem}-{base}"
    folder = media_dir / _safe_part(platform) / time.strftime("%Y-%m-%d")
    path = folder / f"{stem}{_suffix(file_name, mime_type, kind)}"
    await asyncio.to_thread(_write_atomically, path, data)
    return MediaRef(
        path=str(path),
        kind=kind,
        mime_type=mime_type or mimetypes.guess_type(path.name)[0],
        file_name=file_name,
    )


def _as_ref(item: MediaItem) -> MediaRef:
    if isinstance(item, MediaRef):
        return item
    if isinstance(item, str):
        mime = mimetypes.guess_type(item)[0]
        return MediaRef(path=item, kind=kind_for(mime), mime_type=mime)
    path = str(item.get("path", ""))
    mime = item.get("mime_type") or mimetypes.guess_type(path)[0]
    kind = item.get("kind") or kind_for(mime, item.get("file_name"))
    return MediaRef(path=path, kind=kind, mime_type=mime, file_name=item.get("file_name"))


def _describe(ref: MediaRef) -> str:
    details = [d for d in (ref.file_name, ref.mime_type) if d]
    extra = f" ({', '.join(details)})" if details else ""
    article = "an" if ref.kind[:1] in "aeiou" else "a"
    return f"[The user attached {article} {ref.kind} file: {ref.path}{extra}]"


def _url_part(item: MediaItem) -> dict[str, Any] | None:
    """An ``image_url`` part for an image given by URL (the API's clients send those), the
    URL passed on as it is for the model server to fetch."""
    if not isinstance(item, Mapping) or not item.get("url"):
        return None
    image: dict[str, Any] = {"url": str(item["url"])}
    if item.get("detail"):
        image["detail"] = item["detail"]
    return {"type": "image_url", "image_url": image}


def _image_part(ref: MediaRef, detail: str | None = None) -> dict[str, Any] | None:
    """An ``image_url`` part with the file inlined, or None if it cannot be inlined."""
    try:
        path = Path(ref.path)
        if path.stat().st_size > MAX_INLINE_IMAGE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    mime = ref.mime_type if (ref.mime_type or "").startswith("image/") else None
    mime = mime or mimetypes.guess_type(ref.path)[0] or "image/jpeg"
    encoded = base64.b64encode(data).decode("ascii")
    image: dict[str, Any] = {"url": f"data:{mime};base64,{encoded}"}
    if detail:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def build_user_content(text: str, media: Sequence[MediaItem]) -> str | list[dict[str, Any]]:
    """A user message's ``content`` for the chat-completions API.

    Plain ``text`` when nothing is attached or only non-image files are (they are named by
    path after the text); a list of parts (text first, then one ``image_url`` per image) when
    images are, which vision models read and the rest of the pipeline treats as opaque.
    An image that is gone or too large to inline is named by path like any other file.
    """
    images: list[dict[str, Any]] = []
    notes: list[str] = []
    for item in media:
        linked = _url_part(item)
        if linked is not None:
            images.append(linked)
            continue
        ref = _as_ref(item)
        if not ref.path:
            continue
        detail = item.get("detail") if isinstance(item, Mapping) else None
        part = _image_part(ref, detail) if ref.kind == "image" else None
        if part is not None:
            images.append(part)
        else:
            notes.append(_describe(ref))
    body = text
    if notes:
        listed = "\n".join(notes)
        body = f"{text.rstrip()}\n\n{listed}" if text.strip() else listed
    if not images:
        return body
    parts: list[dict[str, Any]] = []
    if body:
        parts.append({"type": "text", "text": body})
    parts.extend(images)
    return parts
