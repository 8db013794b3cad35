"""Markdown (what models write) to Slack's mrkdwn, and Slack's markup back to plain text.

Slack's flavour differs from CommonMark: ``*bold*``, ``_italic_``, ``~strike~``, links as
``<url|label>``, no headings, and ``&``, ``<``, ``>`` must be escaped everywhere except
inside the few control sequences Slack itself parses. Code (fenced and inline) is kept as
written, only escaped. The conversion never makes a text longer than :func:`measure` says,
so chunking the Markdown source with that measure keeps every converted message within
Slack's limit.
"""

from __future__ import annotations

import html
import re

__all__ = ["SLACK_LIMIT", "from_slack", "measure", "to_mrkdwn"]

SLACK_LIMIT = 39_000
"""Characters of ``text`` per message (Slack truncates past 40,000; a margin is kept)."""

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n(.*?)(?:^ {0,3}\1[ \t]*$|\Z)", re.M | re.S)
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.S)
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.M)

_MENTION = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>")
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def measure(text: str) -> int:
    """An upper bound of ``len(to_mrkdwn(text))``: escaping adds at most 4 per ``&<>``."""
    return len(text) + 4 * (text.count("&") + text.count("<") + text.count(">"))


def _inline(text: str) -> str:
    """Convert one stretch of prose (no fenced code in it)."""
    pieces: list[str] = []
    pos = 0
    for m in _INLINE_CODE.finditer(text):
        pieces.append(_prose(text[pos : m.start()]))
        pieces.append("`" + _esc(m.group(2)) + "`")
        pos = m.end()
    pieces.append(_prose(text[pos:]))
    return "".join(pieces)


def _prose(text: str) -> str:
    links: list[str] = []

    def keep_link(m: re.Match[str]) -> str:
        links.append(f"<{_esc(m.group(2))}|{_esc(m.group(1))}>")
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    text = _esc(text)
    text = _HEADING.sub(lambda m: f"\x01{m.group(1)}\x01", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _BOLD.sub(lambda m: f"\x01{m.group(2)}\x01", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace("\x01", "*")
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], text)


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for a Markdown text; code blocks keep their content verbatim."""
    out: list[str] = []
    pos = 0
    for m in _FENCE.finditer(markdown):
        out.append(_inline(markdown[pos : m.start()]))
        body = m.group(2).rstrip("\n")
        out.append("```\n" + _esc(body) + "\n```")
        pos = m.end()
    out.append(_inline(markdown[pos:]))
    return "".join(out)


def from_slack(text: str, names: dict[str, str] | None = None) -> str:
    """A user's message as plain text: mentions as ``@name``, links as their URL, entities
    unescaped (Slack sends ``&amp;``, ``&lt;``, ``&gt;``)."""
    names = names or {}

    def mention(m: re.Match[str]) -> str:
        kind, ident, label = m.group(1), m.group(2), m.group(3)
        if kind == "@":
            return "@" + (label or names.get(ident, ident))
        if kind == "#":
            return "#" + (label or ident)
        return "@" + (label or ident.split("^")[0])  # <!here>, <!channel>

    def link(m: re.Match[str]) -> str:
        url, label = m.group(1), m.group(2)
        return f"{label} ({url})" if label and label != url else url

    text = _SLACK_LINK.sub(link, text)
    text = _MENTION.sub(mention, text)
    return html.unescape(text)
