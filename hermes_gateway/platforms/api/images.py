"""Images sent by API clients, on their way to the model as image parts.

A data URL is decoded, checked and saved under HERMES_HOME/media like a Telegram photo, so the
stored message names a file (not megabytes of base64 in the database) and the model gets it
inlined again by :func:`hermes_gateway.media.build_user_content`. An http(s) URL is passed on
as it is: the model server fetches it, never the gateway, so a request cannot make the
gateway reach into the network it sits in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from pathlib import Path
from typing import Any

from hermes_gateway.media import save_media
from hermes_gateway.platforms.api.errors import bad_request
from hermes_gateway.store import StoredMessage

__all__ = ["has_images", "store_images"]

_DATA_URL = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,", re.IGNORECASE)


def has_images(messages: list[StoredMessage]) -> str | None:
    """The request field of the first image among ``messages``, or None."""
    for m in messages:
        images = m.meta.get("images")
        if images:
            return str(images[0]["param"])
    return None


def _decode(url: str, param: str) -> tuple[bytes, str]:
    match = _DATA_URL.match(url)
    if match is None:
        raise bad_request(
            f"Invalid image data URL in '{param}': expected data:image/<type>;base64,<data>.",
            param,
            "invalid_image_url",
        )
    try:
        data = base64.b64decode(url[match.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            f"Invalid image data URL in '{param}': the data is not valid base64.",
            param,
            "invalid_image_url",
        ) from None
    if not data:
        raise bad_request(f"Empty image in '{param}'.", param, "invalid_image_url")
    return data, match.group(1).lower()


async def store_images(messages: list[StoredMessage], media_dir: Path) -> None:
    """Turn each message's ``meta["images"]`` into ``meta["media"]`` (files and URLs).

    Raises ApiError (400) naming the part for a data URL that is not an image in base64.
    Decoding and writing happen in a thread; the same image sent twice is one file.
    """
    for message in messages:
        images = message.meta.pop("images", None)
        if not images:
            continue
        media: list[dict[str, Any]] = []
        for image in images:
            url, param = image["url"], image["param"]
            item: dict[str, Any]
            if url.startswith("data:"):
                data, mime = await asyncio.to_thread(_decode, url, param)
                digest = hashlib.sha256(data).hexdigest()[:24]
                ref = await save_media(
                    media_dir,
                    data,
                    platform="api",
                    unique_id=digest,
                    kind="image",
                    mime_type=mime,
                )
                item = {"path": ref.path, "kind": "image", "mime_type": ref.mime_type}
            else:
                item = {"url": url, "kind": "image"}
            if "detail" in image:
                item["detail"] = image["detail"]
            media.append(item)
        message.meta["media"] = media
