"""Markdown to plain text, for platforms that show every character literally (SMS).

The model writes Markdown; on a phone's SMS app ``**bold**`` arrives as four asterisks and a
word. What the markup meant is kept where plain text can say it (a list stays a list, a link
keeps its address, code keeps its text); the markup itself goes.
"""

from __future__ import annotations

import re

__all__ = ["markdown_to_plain"]

_FENCE = re.compile(r"^\s*(```|~~~)[^\n]*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_BULLET = re.compile(r"^(\s*)[*+-]\s+")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_CODE = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDER = re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")


def markdown_to_plain(text: str) -> str:
    """``text`` without Markdown markup; code blocks keep their lines as written."""
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            out.append(line)
            continue
        if _TABLE_RULE.match(line) and "|" in line:
            continue
        out.append(_line(line))
    plain = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", plain).strip()


def _line(line: str) -> str:
    if _RULE.match(line):
        return ""
    heading = _HEADING.match(line)
    if heading:
        line = heading.group(1)
    while _QUOTE.match(line):
        line = _QUOTE.sub("", line, count=1)
    line = _BULLET.sub(lambda m: f"{m.group(1)}• ", line)
    if line.strip().startswith("|") and line.strip().endswith("|"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        line = "  ".join(c for c in cells if c)
    # Code spans first: their content is literal.
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(2).strip())
        return f"\x00{len(spans) - 1}\x00"

    line = _CODE.sub(keep, line)

    def escaped(match: re.Match[str]) -> str:
        spans.append(match.group(1))
        return f"\x00{len(spans) - 1}\x00"

    line = _ESCAPE.sub(escaped, line)
    line = _IMAGE.sub(lambda m: f"{m.group(1)} ({m.group(2)})" if m.group(1) else m.group(2), line)
    line = _LINK.sub(_link, line)
    line = _AUTOLINK.sub(r"\1", line)
    line = _BOLD.sub(r"\2", line)
    line = _STRIKE.sub(r"\1", line)
    line = _ITALIC_STAR.sub(r"\1", line)
    line = _ITALIC_UNDER.sub(r"\1", line)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], line)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if label.strip() == url or label.strip() == url.removeprefix("mailto:"):
        return url
    return f"{label} ({url})"
