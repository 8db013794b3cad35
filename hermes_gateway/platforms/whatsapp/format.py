"""Markdown to WhatsApp's own formatting.

WhatsApp shows ``*bold*``, ``_italic_``, ``~strike~``, ```` ```monospace``` ```` and inline
`` `code` ``; Markdown's ``**bold**`` would show its outer asterisks, headings their hashes,
links their brackets. Code is left as written.
"""

from __future__ import annotations

import re

__all__ = ["TEXT_LIMIT", "markdown_to_whatsapp"]

TEXT_LIMIT = 4096
"""Characters in one text message body (the Cloud API's limit)."""

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_CODE = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BULLET = re.compile(r"^(\s*)[*+]\s+")


def markdown_to_whatsapp(text: str) -> str:
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
            out.append("```")
            continue
        out.append(line if in_code else _line(line))
    return "\n".join(out)


def _line(line: str) -> str:
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    line = _CODE.sub(keep, line)
    heading = _HEADING.match(line)
    if heading:
        line = f"\x01{heading.group(1)}\x01"
    line = _BULLET.sub(lambda m: f"{m.group(1)}- ", line)
    line = _LINK.sub(
        lambda m: m.group(2) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", line
    )
    line = _BOLD.sub("\x01\\2\x01", line)  # held apart until italics are done
    line = _ITALIC.sub(r"_\1_", line)
    line = _STRIKE.sub(r"~\1~", line)
    line = line.replace("\x01", "*")
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], line)
