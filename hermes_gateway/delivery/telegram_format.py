"""Markdown (as models write it) to Telegram's HTML parse mode.

Why HTML and not MarkdownV2: MarkdownV2 demands escaping of 18 punctuation characters and
rejects the whole message over one stray ``.`` or ``!``; with HTML only ``&``, ``<`` and
``>`` need escaping and any text we cannot interpret can simply stay literal.

The converter is written for text that may be *incomplete* (it runs on every streamed
edit): an unclosed code fence is code up to the end, an unmatched ``*``, ``_``, ``~~`` or
backtick stays a literal character. Tags are emitted only in matched pairs by a recursive
renderer, so the output is always well-formed and uses only ``b i s code pre a
blockquote``. If Telegram still refuses the entities, the adapter sends the original text
without a parse mode (see ``errors.FormattingRejected``).
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_to_telegram_html"]

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*([^\n]*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*\r?")
_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*\r?")
_HRULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*\r?")
_BULLET = re.compile(r"([ \t]*)[-*+][ \t]+(.*)", re.S)
_QUOTE = re.compile(r" {0,3}>")
_LANG = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")
_LINK = re.compile(
    r"\[([^\[\]\n]*)\]\(\s*([^\s()]+(?:\([^\s()]*\)[^\s()]*)*)(?:\s+\"[^\"\n]*\")?\s*\)"
)
_AUTOLINK = re.compile(r"<((?:https?|tg|mailto):[^\s<>]+)>")
_SAFE_URL = re.compile(r"(?:https?://|tg://|mailto:)[^\s<>\"]+", re.I)
_PUNCT = frozenset("\\`*_{}[]()#+-.!|~>\"'<=&$%^,/:;?@")
_EMPH_TAGS: dict[tuple[str, int], tuple[str, ...]] = {
    ("*", 1): ("i",),
    ("_", 1): ("i",),
    ("*", 2): ("b",),
    ("_", 2): ("b",),
    ("~", 2): ("s",),
    ("*", 3): ("b", "i"),
    ("_", 3): ("b", "i"),
}
_HR_TEXT = "———"
"""Never longer than the rule it replaces, so chunk sizes stay valid after conversion."""


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def markdown_to_telegram_html(md: str) -> str:
    """Convert Markdown to Telegram HTML; safe on partial (mid-stream) text."""
    lines = md.split("\n")
    out: list[str] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        fence = _FENCE_OPEN.fullmatch(line)
        if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            marker = fence.group(1)
            body: list[str] = []
            i += 1
            while i < n:
                close = _FENCE_CLOSE.fullmatch(lines[i])
                if close and close.group(1)[0] == marker[0] and len(close.group(1)) >= len(marker):
                    break
                body.append(lines[i])
                i += 1
            i += 1  # skip the closing line (or run past the end when unclosed)
            out.append(_code_block("\n".join(body), fence.group(2)))
            continue
        if _QUOTE.match(line):
            quoted: list[str] = []
            while i < n and _QUOTE.match(lines[i]):
                quoted.append(_inline(_unquote(lines[i]), frozenset({"blockquote"})))
                i += 1
            out.append("<blockquote>" + "\n".join(quoted) + "</blockquote>")
            continue
        out.append(_block_line(line))
        i += 1
    return "\n".join(out)


def _code_block(code: str, info: str) -> str:
    words = info.split()
    lang = words[0] if words else ""
    if lang and _LANG.fullmatch(lang):
        return f'<pre><code class="language-{_esc(lang)}">{_esc(code)}</code></pre>'
    return f"<pre>{_esc(code)}</pre>"


def _unquote(line: str) -> str:
    """Strip every level of ``>`` (Telegram has no nested quotes)."""
    s = line.lstrip(" ")
    while s.startswith(">"):
        s = s[1:]
        if s.startswith(" "):
            s = s[1:]
    return s


def _block_line(line: str) -> str:
    m = _HEADING.fullmatch(line)
    if m:
        inner = _inline(m.group(2), frozenset({"b"}))
        return f"<b>{inner}</b>" if inner else ""
    if _HRULE.fullmatch(line):
        return _HR_TEXT
    m = _BULLET.fullmatch(line)
    if m:
        return m.group(1) + "• " + _inline(m.group(2), frozenset())
    return _inline(line, frozenset())


def _run_len(s: str, i: int) -> int:
    ch = s[i]
    j = i
    while j < len(s) and s[j] == ch:
        j += 1
    return j - i


def _find_run(s: str, start: int, ch: str, length: int) -> int:
    """Index of the next run of exactly ``length`` ``ch`` characters, or -1."""
    k = start
    while True:
        k = s.find(ch, k)
        if k < 0:
            return -1
        r = _run_len(s, k)
        if r == length:
            return k
        k += r


def _inline(s: str, active: frozenset[str]) -> str:
    """Render one line's inline Markdown; ``active`` tags are not opened again."""
    out: list[str] = []
    lit: list[str] = []

    def flush() -> None:
        if lit:
            out.append(_esc("".join(lit)))
            lit.clear()

    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch == "\\" and i + 1 < n and s[i + 1] in _PUNCT:
            lit.append(s[i + 1])
            i += 2
            continue
        if ch == "`":
            run = _run_len(s, i)
            close = _find_run(s, i + run, "`", run)
            if close < 0:
                lit.append(s[i : i + run])
                i += run
                continue
            code = s[i + run : close]
            if len(code) >= 2 and code[0] == " " and code[-1] == " " and code.strip():
                code = code[1:-1]
            flush()
            out.append(f"<code>{_esc(code)}</code>" if code else _esc(s[i : close + run]))
            i = close + run
            continue
        if ch == "<":
            m = _AUTOLINK.match(s, i)
            if m:
                lit.append(m.group(1))  # Telegram links bare URLs itself
                i = m.end()
                continue
        if ch == "[" and "a" not in active:
            m = _LINK.match(s, i)
            if m and m.group(1).strip() and _SAFE_URL.fullmatch(m.group(2)):
                flush()
                label = _inline(m.group(1), active | {"a"})
                href = html.escape(m.group(2), quote=True)
                out.append(f'<a href="{href}">{label}</a>')
                i = m.end()
                continue
        if ch in "*_~":
            run = _run_len(s, i)
            done = _emphasis(s, i, run, active)
            if done is not None:
                flush()
                out.append(done[0])
                i = done[1]
                continue
            lit.append(s[i : i + run])
            i += run
            continue
        lit.append(ch)
        i += 1
    flush()
    return "".join(out)


def _emphasis(s: str, i: int, run: int, active: frozenset[str]) -> tuple[str, int] | None:
    """Match an emphasis opener at ``i``; return (html, index after closer) or None."""
    ch = s[i]
    tags = _EMPH_TAGS.get((ch, run))
    if tags is None:
        return None
    n = len(s)
    after = i + run
    if after >= n or s[after].isspace():
        return None
    if (ch == "_" or run == 1) and i > 0 and s[i - 1].isalnum():
        return None  # snake_case and 2*3*4 are not emphasis
    close = _find_closer(s, after, ch, run)
    if close < 0:
        return None
    inner_active = active | set(tags)
    inner = _inline(s[after:close], inner_active)
    opened = [t for t in tags if t not in active]
    html_out = (
        "".join(f"<{t}>" for t in opened) + inner + "".join(f"</{t}>" for t in reversed(opened))
    )
    return html_out, close + run


def _find_closer(s: str, k: int, ch: str, run: int) -> int:
    """Find the closing delimiter, skipping escapes, code spans and links."""
    n = len(s)
    while k < n:
        c = s[k]
        if c == "\\":
            k += 2
            continue
        if c == "`":
            r = _run_len(s, k)
            close = _find_run(s, k + r, "`", r)
            k = close + r if close >= 0 else k + r
            continue
        if c == "[":
            m = _LINK.match(s, k)
            if m:
                k = m.end()
                continue
        if c == ch:
            r = _run_len(s, k)
            if (
                r == run
                and not s[k - 1].isspace()
                and ((ch != "_" and run != 1) or k + r >= n or not s[k + r].isalnum())
            ):
                return k
            k += r
            continue
        k += 1
    return -1
