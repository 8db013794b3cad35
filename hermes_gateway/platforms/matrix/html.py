"""Markdown to the HTML Matrix clients render (``formatted_body``), and mentions in it.

Models write Markdown; Matrix shows ``formatted_body`` (``format: org.matrix.custom.html``)
and falls back to the plain ``body``. markdown-it-py (CommonMark, tables and strikethrough on)
converts; raw HTML in the model's text is escaped, never passed through, so an answer cannot
inject markup (links with ``javascript:`` are refused by markdown-it's own validation).
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["ROOM_MENTION", "markdown_to_html", "quiet"]

ROOM_MENTION = re.compile(r"(?<![\w@])@room\b")
"""``@room`` notifies everyone in a room (when the sender may): defused in answers."""


def quiet(text: str) -> str:
    """The text with ``@room`` defused by a zero-width space (shown the same, pinging nobody)."""
    return ROOM_MENTION.sub("@\u200broom", text)


@functools.cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(
        ["table", "strikethrough"]
    )


def markdown_to_html(text: str) -> str:
    """``formatted_body`` for Markdown ``text`` (without the trailing newline)."""
    return str(_parser().render(text)).strip()
