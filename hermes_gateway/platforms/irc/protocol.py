"""IRC lines: parsing (RFC 1459 with IRCv3 message tags), building, and fitting text to them.

Pure functions, no I/O: the parser is what every other part trusts, so it is small and
tested on its own. A line is at most 512 bytes with its CRLF (RFC 1459 2.3); IRCv3 tags come
before it and have their own budget. What a *recipient* reads is longer than what we send:
the server puts ``:nick!user@host`` in front, so the text of a PRIVMSG must leave room for
that prefix too (:func:`text_budget`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "LINE_LIMIT",
    "Message",
    "build",
    "fit_lines",
    "nick_of",
    "parse",
    "plain_text",
    "text_budget",
]

LINE_LIMIT = 512
"""Bytes in one IRC line, CRLF included (tags not counted)."""
PREFIX_GUESS = 1 + 10 + 1 + 63
"""``!user@host`` at most, when the server has not yet shown us our own prefix: a 10-byte
ident (with ``~``) and a 63-byte host name."""

_TAG_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed line: ``@tags :source COMMAND params...``."""

    command: str
    params: tuple[str, ...] = ()
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def param(self, index: int, default: str = "") -> str:
        return self.params[index] if len(self.params) > index else default


def _unescape_tag(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        out.append(_TAG_UNESCAPE.get(nxt, nxt))  # a lone trailing backslash is dropped
    return "".join(out)


def parse(line: str) -> Message:
    """Parse one line (without CRLF). Never raises: a malformed line gives an empty command."""
    rest = line.rstrip("\r\n")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        for item in raw.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = _unescape_tag(value)
    rest = rest.lstrip(" ")
    source = ""
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
    rest = rest.lstrip(" ")
    command, _, rest = rest.partition(" ")
    params: list[str] = []
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        param, _, rest = rest.partition(" ")
        params.append(param)
    return Message(command.upper(), tuple(params), source, tags)


def nick_of(source: str) -> str:
    """The nick of a ``nick!user@host`` source (a server name stays as it is)."""
    return source.split("!", 1)[0]


def build(command: str, *params: str) -> str:
    """One line to send (without CRLF). Refuses what would smuggle a second command in."""
    for param in params:
        if any(ch in param for ch in "\r\n\0"):
            raise ValueError("an IRC parameter cannot contain CR, LF or NUL")
    if not params:
        return command
    *middle, last = params
    for param in middle:
        if not param or " " in param or param.startswith(":"):
            raise ValueError(f"not a middle IRC parameter: {param!r}")
    if not last or " " in last or last.startswith(":"):
        last = ":" + last
    return " ".join([command, *middle, last])


def text_budget(nick: str, own_prefix: str | None, command: str, target: str) -> int:
    """Bytes of text that fit in one ``COMMAND target :text`` as a recipient receives it.

    ``own_prefix`` is our ``nick!user@host`` as the server shows it (from our JOIN echo);
    unknown, the longest usual ``!user@host`` is assumed.
    """
    prefix = own_prefix or (nick + "!" + "u" * (PREFIX_GUESS - 2) + "@")
    head = f":{prefix} {command} {target} :"
    return LINE_LIMIT - 2 - len(head.encode("utf-8"))


_FENCE = re.compile(r"^\s*```[\w+-]*\s*$")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_CODE = re.compile(r"`([^`\n]+)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+")
_CONTROL = re.compile(r"[\x00\x01\r]")


def plain_text(text: str) -> str:
    """Markdown made plain (IRC shows no markup): fences dropped, bold and code marks
    removed, links as ``text (url)``. CTCP's \\x01 and CR/NUL never reach the wire."""
    lines: list[str] = []
    for line in _CONTROL.sub("", text).split("\n"):
        if _FENCE.match(line):
            continue
        line = _HEADING.sub("", line)
        line = _BOLD.sub(lambda m: m.group(1) or m.group(2), line)
        line = _CODE.sub(r"\1", line)
        line = _IMAGE.sub(r"\2", line)
        line = _LINK.sub(r"\1 (\2)", line)
        lines.append(line)
    return "\n".join(lines)


def _cut(data: bytes, budget: int) -> int:
    """The largest cut <= budget that does not fall inside a UTF-8 character."""
    cut = min(budget, len(data))
    while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def fit_lines(text: str, budget: int) -> list[str]:
    """The lines to send for ``text``: one per line of it, each at most ``budget`` UTF-8
    bytes. A long line is cut at its last space within the budget (the space is dropped),
    else at a character boundary, never inside a multi-byte character. Blank lines are
    skipped: IRC cannot send an empty message."""
    if budget < 4:
        raise ValueError("no room for text on an IRC line")
    out: list[str] = []
    for line in plain_text(text).split("\n"):
        data = line.rstrip().encode("utf-8")
        while len(data) > budget:
            cut = _cut(data, budget)
            space = data.rfind(b" ", 0, cut + 1)
            if space > budget // 2:
                out.append(data[:space].decode("utf-8"))
                data = data[space + 1 :]
            else:
                out.append(data[:cut].decode("utf-8"))
                data = data[cut:]
        if data.strip():
            out.append(data.decode("utf-8"))
    return out
