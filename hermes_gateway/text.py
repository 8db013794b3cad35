"""Short text for people: clipped previews and durations in words.

Why one module: listings, notices, dialogs and command replies across the gateway, cron and
the TUI each grew their own copy of "squash to one line and add an ellipsis" and "5 min ago";
the copies drifted apart in small ways. Here each variant has one name, and the outputs are
exactly what those copies produced (tests and snapshots assert on them).

Clipping never splits a character but may split a word; ``…`` is one character, so a clipped
result is exactly ``limit`` characters long.
"""

from __future__ import annotations

import math
import re

ELLIPSIS = "\u2026"

# ---- clipping --------------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and ``…`` (line breaks kept).

    For blocks of text (a command in a code block); :func:`one_line` for previews.
    """
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def one_line(text: str | None, limit: int = 80, *, trim: bool = False) -> str:
    """``text`` as one line (runs of whitespace, newlines included, become one space), clipped.

    Previews of messages, commands and tool arguments must not break a listing's layout.
    ``None`` gives ``""``. With ``trim``, whitespace before the ellipsis is dropped
    (``"deploy …"`` becomes ``"deploy…"``), for places where every character counts.
    """
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    head = flat[: max(limit - 1, 0)]
    return (head.rstrip() if trim else head) + ELLIPSIS


def safe_line(text: str | None, limit: int, *, empty: str = "-") -> str:
    """A stranger's text (a display name, an id) as safe terminal text: one clipped line.

    Every non-printable character (escape sequences, newlines, tabs) becomes ``?`` so a
    hostile name cannot move the cursor or recolour the terminal; blank text shows ``empty``.
    """
    if not text:
        return empty
    return clip("".join(ch if ch.isprintable() else "?" for ch in text), limit)


# ---- durations -------------------------------------------------------------------------------


def ago(seconds: float) -> str:
    """``just now``, ``5 min ago``, ``2 h ago``, ``3 d ago``: the age of an item in a listing."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86_400)} d ago"


def ago_short(seconds: float) -> str:
    """``now``, ``5m``, ``2h``, ``3d``: :func:`ago` for a narrow column."""
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86_400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86_400)}d"


def stopwatch(seconds: float) -> str:
    """``0.4s``, ``12.3s``, ``2m05s``: how long something took, short enough for a progress line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


def uptime(seconds: float) -> str:
    """``45s``, ``12m``, ``2h 05m``, ``3d 4h``: how long something has been running."""
    seconds = int(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86_400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d {seconds % 86_400 // 3600}h"


def rough_duration(seconds: float) -> str:
    """``45 s``, ``1.5 s``, ``5 min``: a configured wait or timeout, in words for a chat."""
    if seconds < 90:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.0f} min"


def minutes_left(seconds: float) -> int:
    """Whole minutes, rounded up and at least 1: "try again in N min" never says 0."""
    return max(1, math.ceil(seconds / 60))


def minutes_in_words(minutes: int) -> str:
    """``2 d 3 h``, ``1 h 30 min``, ``45 min``: largest units first, never a zero part."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {u}" for n, u in ((days, "d"), (hours, "h"), (mins, "min")) if n]
    return " ".join(parts)


__all__ = [
    "ELLIPSIS",
    "ago",
    "ago_short",
    "clip",
    "minutes_in_words",
    "minutes_left",
    "one_line",
    "rough_duration",
    "safe_line",
    "stopwatch",
]


_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_surrogates(text: str) -> str:
    """Replace lone surrogates with U+FFFD.

    ``"\\ud800"`` is valid JSON and a valid Python string but not valid UTF-8: kept, it
    fails every later encode (the store, the model request), long after it was accepted.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text
