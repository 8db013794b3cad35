"""Twilio's inbound-message webhook: the form it posts, checked and turned into a MessageEvent.

Twilio posts ``application/x-www-form-urlencoded`` with ``MessageSid``, ``From``, ``To``,
``Body``, ``NumMedia`` and ``MediaUrlN``/``MediaContentTypeN`` per MMS attachment (and more we
do not need). Opt-out keywords (``OptOutType`` STOP/START/HELP) are Twilio's business, not
the agent's. Every SMS is a DM: the session is the sender's number. The ``MessageSid`` is the
message id, so a webhook Twilio sends twice is dropped by the inbox.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from hermes_gateway.models import MessageEvent, SessionSource

__all__ = ["MAX_FORM_BYTES", "SmsForm", "parse_form", "to_event"]

MAX_FORM_BYTES = 64 * 1024
"""Twilio's webhook bodies are a few hundred bytes; anything far larger is not Twilio."""
MAX_MEDIA = 10
"""Twilio sends at most 10 media per MMS."""


@dataclass(frozen=True)
class SmsForm:
    params: list[tuple[str, str]]
    """Every posted pair, in order (the signature covers all of them)."""

    def get(self, name: str) -> str:
        for key, value in self.params:
            if key == name:
                return value
        return ""

    @property
    def media(self) -> list[tuple[str, str]]:
        """``(url, content type)`` of each MMS attachment."""
        try:
            count = min(int(self.get("NumMedia") or 0), MAX_MEDIA)
        except ValueError:
            count = 0
        found = []
        for i in range(count):
            url = self.get(f"MediaUrl{i}")
            if url:
                found.append((url, self.get(f"MediaContentType{i}")))
        return found


def parse_form(body: bytes) -> SmsForm:
    """The posted pairs; ValueError for a body that is not UTF-8 form data."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    return SmsForm(pairs)


def to_event(form: SmsForm, platform: str) -> MessageEvent | None:
    """The message for the runner; None when it is not a message from a person."""
    sender = form.get("From").strip()
    sid = form.get("MessageSid").strip() or form.get("SmsSid").strip()
    if not sender or not sid:
        return None
    if form.get("OptOutType"):
        # STOP / START / HELP: Twilio's opt-out handling already answered the person (and
        # refuses messages to a number that stopped): not a question for the agent.
        return None
    source = SessionSource(
        platform=platform,
        chat_id=sender,
        chat_type="dm",
        user_id=sender,
        user_name=sender,
        chat_name=sender,
    )
    return MessageEvent(text=form.get("Body").strip(), source=source, message_id=sid)
