"""Meta's ``messages`` webhook payload, turned into MessageEvents.

A notification is ``{"object": "whatsapp_business_account", "entry": [{"id", "changes":
[{"field": "messages", "value": {"metadata": {"phone_number_id"}, "contacts": [{"wa_id",
"profile": {"name"}}], "messages": [...], "statuses": [...]}}]}]}``. Each message has ``from``
(the user's wa_id), ``id`` (its wamid, our message id: Meta redelivers until it gets a 200,
and the inbox drops what it has), ``timestamp`` and a ``type`` with a same-named object:
``text.body``; ``image``/``video``/``audio``/``document``/``sticker`` with a media ``id``,
``mime_type``, ``caption`` (``filename`` for documents); ``button.text`` and
``interactive.button_reply``/``list_reply`` titles. Reactions, system and unsupported types
are not messages to answer. Notifications for another phone number of the same app are not
ours. Every WhatsApp Cloud chat is a DM: one session per user.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from hermes_gateway.models import MediaKind, MessageEvent, SessionSource

__all__ = ["Incoming", "MediaPart", "StatusError", "parse_notification"]

log = logging.getLogger(__name__)

_MEDIA: dict[str, MediaKind] = {
    "image": "image",
    "sticker": "image",
    "video": "video",
    "audio": "audio",
    "document": "document",
}


@dataclass(frozen=True)
class MediaPart:
    media_id: str
    kind: MediaKind
    mime_type: str
    file_name: str | None


@dataclass
class Incoming:
    event: MessageEvent
    sent_at: float
    """When the user wrote (Meta's ``timestamp``): the 24-hour window starts here."""
    media: list[MediaPart] = field(default_factory=list)


@dataclass(frozen=True)
class StatusError:
    """A ``failed`` status of one of our messages (e.g. 131047 reported asynchronously)."""

    recipient: str
    code: int | None
    title: str


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_notification(
    payload: dict[str, Any], phone_number_id: str, platform: str
) -> tuple[list[Incoming], list[StatusError]]:
    """The messages for us, in order, and the failures Meta reports for our messages."""
    incoming: list[Incoming] = []
    failures: list[StatusError] = []
    if payload.get("object") != "whatsapp_business_account":
        return incoming, failures
    for entry in _list(payload.get("entry")):
        for change in _list(_obj(entry).get("changes")):
            change = _obj(change)
            value = _obj(change.get("value"))
            if change.get("field") != "messages":
                continue
            metadata = _obj(value.get("metadata"))
            if str(metadata.get("phone_number_id", "")) != phone_number_id:
                continue  # another number of the same app
            names = {
                str(_obj(c).get("wa_id", "")): str(_obj(_obj(c).get("profile")).get("name", ""))
                for c in _list(value.get("contacts"))
            }
            for raw in _list(value.get("messages")):
                found = _message(_obj(raw), names, platform)
                if found is not None:
                    incoming.append(found)
            for status in _list(value.get("statuses")):
                status = _obj(status)
                if status.get("status") != "failed":
                    continue
                for err in _list(status.get("errors")) or [{}]:
                    err = _obj(err)
                    code = err.get("code")
                    failures.append(
                        StatusError(
                            str(status.get("recipient_id", "")),
                            code if isinstance(code, int) else None,
                            str(err.get("title") or err.get("message") or "failed"),
                        )
                    )
    return incoming, failures


def _message(raw: dict[str, Any], names: dict[str, str], platform: str) -> Incoming | None:
    sender = str(raw.get("from", "")).strip()
    wamid = str(raw.get("id", "")).strip()
    kind = str(raw.get("type", ""))
    if not sender or not wamid:
        return None
    try:
        sent_at = float(raw.get("timestamp", 0))
    except (TypeError, ValueError):
        sent_at = 0.0
    text = ""
    media: list[MediaPart] = []
    body = _obj(raw.get(kind))
    if kind == "text":
        text = str(body.get("body", ""))
    elif kind in _MEDIA:
        media_id = str(body.get("id", ""))
        if media_id:
            media.append(
                MediaPart(
                    media_id,
                    _MEDIA[kind],
                    str(body.get("mime_type", "")),
                    str(body["filename"]) if body.get("filename") else None,
                )
            )
        text = str(body.get("caption", ""))
    elif kind == "button":
        text = str(body.get("text", ""))
    elif kind == "interactive":
        reply = _obj(body.get("button_reply")) or _obj(body.get("list_reply"))
        text = str(reply.get("title", ""))
    else:
        log.debug("WhatsApp message of type %r ignored", kind)
        return None
    name = names.get(sender) or sender
    source = SessionSource(
        platform=platform,
        chat_id=sender,
        chat_type="dm",
        user_id=sender,
        user_name=name,
        chat_name=name,
    )
    context = _obj(raw.get("context"))
    event = MessageEvent(
        text=text.strip(),
        source=source,
        message_id=wamid,
        reply_to_id=str(context["id"]) if context.get("id") else None,
    )
    return Incoming(event, sent_at, media)
