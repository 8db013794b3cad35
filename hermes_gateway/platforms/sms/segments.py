"""SMS segments: how many a text costs, and where to split a long answer.

An SMS carries 140 bytes. Text that fits the GSM 03.38 alphabet goes as 7-bit septets: 160
per single message, 153 per part of a concatenated one (the 6-byte header takes 7 septets);
the extension characters (``^{}\\[~]|€`` and form feed) take two septets and never straddle two
parts. Anything else (emoji, most non-Latin scripts, even one curly quote) turns the whole
message into UCS-2: 70 UTF-16 units single, 67 per part, a surrogate pair never split.

Twilio joins the parts of one ``Body`` with that header, so the phone shows one message; we
send each answer as messages of at most ``per_message`` segments (Twilio advises 10) and
stop an answer at ``max_total`` segments (each one is paid for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hermes_gateway.delivery import split_message

__all__ = ["Encoding", "SegmentCount", "count_segments", "encoding_of", "split_sms"]

Encoding = Literal["GSM-7", "UCS-2"]

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

TRUNCATED_NOTE = "\n[answer cut: too long for SMS]"


def encoding_of(text: str) -> Encoding:
    """GSM-7 if every character is in the GSM alphabet (with its extension), else UCS-2."""
    for ch in text:
        if ch not in _GSM_BASIC and ch not in _GSM_EXTENSION:
            return "UCS-2"
    return "GSM-7"


def _units(ch: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in _GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    units: int
    """Septets (GSM-7) or UTF-16 units (UCS-2)."""
    segments: int


def count_segments(text: str, encoding: Encoding | None = None) -> SegmentCount:
    """The segments ``text`` takes as one message (a character never split across two)."""
    enc = encoding or encoding_of(text)
    single, part = (GSM_SINGLE, GSM_PART) if enc == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    units = sum(_units(ch, enc) for ch in text)
    if units <= single:
        return SegmentCount(enc, units, 1 if text else 0)
    segments, used = 1, 0
    for ch in text:
        size = _units(ch, enc)
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return SegmentCount(enc, units, segments)


def split_sms(text: str, *, per_message: int = 10, max_total: int = 30) -> list[str]:
    """The bodies to send for ``text``: each at most ``per_message`` segments, cut at a
    paragraph, line or word where possible; at most ``max_total`` segments in all (a cut
    answer ends with a note saying so)."""
    if not text:
        return []
    encoding = encoding_of(text)
    part = GSM_PART if encoding == "GSM-7" else UCS2_PART
    limit = (
        part * per_message
        if per_message > 1
        else (GSM_SINGLE if encoding == "GSM-7" else UCS2_SINGLE)
    )

    def measure(chunk: str) -> int:
        return count_segments(chunk, encoding).units

    # Per-character sizes can push a body one segment over (a character never straddles two
    # parts): leave room for that.
    bodies = split_message(text, max(1, limit - per_message), measure=measure)
    out: list[str] = []
    total = 0
    for body in bodies:
        cost = count_segments(body, encoding).segments
        if total + cost > max_total:
            room = (max_total - total) * part - measure(TRUNCATED_NOTE) - part
            if room > 0:
                cut = _fit(body, room, encoding)
                out.append(cut.rstrip() + TRUNCATED_NOTE)
            elif out:
                out[-1] = _fit(out[-1], measure(out[-1]) - measure(TRUNCATED_NOTE), encoding)
                out[-1] = out[-1].rstrip() + TRUNCATED_NOTE
            break
        out.append(body)
        total += cost
    return out


def _fit(text: str, units: int, encoding: Encoding) -> str:
    """The longest prefix of ``text`` within ``units``, ended at a word where it can."""
    used = 0
    for i, ch in enumerate(text):
        used += _units(ch, encoding)
        if used > units:
            prefix = text[:i]
            space = prefix.rfind(" ")
            return prefix[:space] if space > len(prefix) // 2 else prefix
    return text
