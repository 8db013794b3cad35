"""Turn any user text into a safe FTS5 MATCH expression.

FTS5 has its own query language (``AND``/``OR``/``NOT``, ``NEAR(...)``, ``col:``, ``^``, ``*``,
parentheses, quoted phrases), and a malformed expression is an SQL error. Users type search
text, not query syntax, so nothing they type is interpreted: every whitespace-separated word
becomes a quoted phrase (``"`` doubled inside), phrases are ANDed, and words with no character
the tokenizer would index are dropped. The one convenience kept is a trailing ``*`` on a word,
which asks for a prefix match (``deplo*`` finds "deploy", "deployment").
"""

from __future__ import annotations

import unicodedata

#: At most this many words are used; more only slow the query and narrow nothing useful.
MAX_TERMS = 32


def _has_token_char(text: str) -> bool:
    """Whether ``unicode61`` would find a token in ``text``.

    Its default token characters are the Unicode categories L*, N* and Co; everything else
    (punctuation, symbols, emoji, spaces) separates tokens. A phrase with no token is useless,
    so such words are skipped instead of sent.
    """
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "LN" or cat == "Co":
            return True
    return False


def build_match_query(user_query: str) -> str | None:
    """Return an FTS5 MATCH expression for ``user_query``, or None when it has nothing to find.

    Args:
        user_query: Anything a user typed, including quotes, operators, NULs or lone surrogates.

    Returns:
        A string that FTS5 parses without error and that matches rows containing every word
        (as a phrase, so ``foo_bar`` or ``a-b`` match the adjacent tokens), or None if no word
        has an indexable character (empty string, only punctuation or emoji).
    """
    # NUL ends the query string inside FTS5 ("unterminated string"); lone surrogates cannot be
    # encoded to UTF-8 at all. Neither can be in indexed text, so neither can match anything.
    text = user_query.replace("\x00", " ")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    terms: list[str] = []
    for word in text.split():
        prefix = word.endswith("*")
        body = word.rstrip("*")
        if not _has_token_char(body):
            continue
        phrase = '"' + body.replace('"', '""') + '"'
        terms.append(phrase + "*" if prefix else phrase)
        if len(terms) >= MAX_TERMS:
            break
    return " ".join(terms) if terms else None
