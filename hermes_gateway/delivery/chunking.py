"""Splitting long answers into messages that each fit a platform's limit.

Telegram counts 4096 UTF-16 code units per message, Discord 2000 characters, so the
measure is a parameter. Splits prefer the most natural boundary that still fills a
reasonable part of the message: paragraph, then line, then word, and only then a hard
split (which never cuts a code point, and avoids cutting combining marks, emoji joiners and
modifiers where it can). A split inside a fenced code block closes the fence at the end
of the chunk and reopens it, with its language, at the start of the next one, so every
chunk renders as code on its own.

Contract (what the tests check):

* every chunk's ``text`` measures ``<= limit``;
* ``chunk.text == chunk.prefix + text[chunk.start:chunk.end] + chunk.suffix``, where
  ``prefix`` is ``""`` or a reopened fence line plus ``"\\n"`` and ``suffix`` is ``""`` or
  ``"\\n"`` plus a closing fence;
* the first chunk starts at 0 (or at ``start``), chunks are in order, and the source text
  between two chunks, and after the last one, is whitespace only (the separator that the
  split consumed). Removing the added fence lines and joining the bodies with those
  separators gives back the text exactly.

:func:`split_stream` applies the same rules to text that is still growing and returns
only the leading chunks that no future text can change; the stream consumer freezes
those as finished messages while the answer is being written.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

Measure = Callable[[str], int]
"""Size of a text for a platform; must be monotone and count every character as >= 1."""

_FILL = 0.5
"""A natural boundary is used only if it fills at least this share of the window."""

_OPEN_RE = re.compile(r" {0,3}(`{3,}|~{3,})([^\n]*)")
_CLOSE_RE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*\r?")
_NL_RUN = re.compile(r"\n(?:[ \t]*\n)*")
_WORD_RUN = re.compile(r"[ \t]+")
_STABLE_RE = re.compile(r"\S[^\n]*\n")
_NON_WS = re.compile(r"\S")
_TICKS = re.compile(r"`+")
_WS_RUN = re.compile(r"\s+")

_ZWJ = "\u200d"


def _stable_after(text: str, i: int) -> bool:
    """Whether a finished line with text in it follows ``i``: ``_STABLE_RE.search(text, i)``
    in linear time (the regex rescans to the end of the line from every start, which on a
    long line without newlines took tens of seconds with the event loop blocked)."""
    start = i
    end = text.find("\n", start)
    while end != -1:
        if _NON_WS.search(text, start, end):
            return True
        start = end + 1
        end = text.find("\n", start)
    return False


def utf16_len(s: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts message length in."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message-sized piece of a text and where it came from."""

    start: int
    """Index in the source text where the body starts."""
    end: int
    """Index in the source text where the body ends (exclusive)."""
    body: str
    """``text[start:end]``."""
    prefix: str = ""
    """Reopened fence line + newline when the chunk starts inside a code block."""
    suffix: str = ""
    """Newline + closing fence when the chunk ends inside a code block."""

    @property
    def text(self) -> str:
        """What is sent."""
        return self.prefix + self.body + self.suffix


@dataclass(frozen=True, slots=True)
class _Fence:
    open_start: int
    content_start: int
    close_start: int  # start of the closing line, or len(text) when unclosed
    close_end: int  # end of the closing line (its newline or len(text))
    open_line: str
    marker: str
    closed: bool


def _parse_fences(text: str) -> list[_Fence]:
    """Find fenced code blocks (``` or ~~~, CommonMark-style closing rules)."""
    fences: list[_Fence] = []
    n = len(text)
    pos = 0
    cur: tuple[int, int, str, str, int] | None = None  # open_start, content_start, line, ch, len
    while True:
        nl = text.find("\n", pos)
        end = n if nl < 0 else nl
        line = text[pos:end]
        if cur is None:
            m = _OPEN_RE.fullmatch(line)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                cur = (pos, min(end + 1, n), line.rstrip(), m.group(1)[0], len(m.group(1)))
            elif (col := _mid_line_fence(line)) is not None:
                ticks = len(line[col:]) - len(line[col:].lstrip("`"))
                cur = (pos + col, min(end + 1, n), line[col:].rstrip(), "`", ticks)
        else:
            m = _CLOSE_RE.fullmatch(line)
            if m and m.group(1)[0] == cur[3] and len(m.group(1)) >= cur[4]:
                fences.append(_Fence(cur[0], cur[1], pos, end, cur[2], cur[3] * cur[4], True))
                cur = None
        if nl < 0:
            break
        pos = nl + 1
    if cur is not None:
        fences.append(_Fence(cur[0], cur[1], n, n, cur[2], cur[3] * cur[4], False))
    return fences


def _mid_line_fence(line: str) -> int | None:
    """Column of a backtick fence that opens after text on its line, if there is one.

    Models often write "Run this: ```bash" and put the code on the next lines. Renderers
    differ on whether that is a code block, but for splitting it must count as one: a chunk
    cut inside it has to close it, and the next has to reopen it, or every later chunk
    renders inside-out. Backtick runs pair up as inline code spans (equal lengths); a run of
    three or more left unpaired, followed only by an info string, opens a fence.
    """
    runs = list(_TICKS.finditer(line))
    i = 0
    while i < len(runs):
        run = runs[i].group()
        mate = next((k for k in range(i + 1, len(runs)) if runs[k].group() == run), None)
        if mate is not None:
            i = mate + 1
            continue
        if len(run) >= 3 and i == len(runs) - 1 and line[: runs[i].start()].strip():
            return runs[i].start()
        i += 1
    return None


def _break_ok(text: str, i: int) -> bool:
    """Whether a hard split before ``text[i]`` keeps user-perceived characters whole."""
    if i <= 0 or i >= len(text):
        return True
    ch, prev = text[i], text[i - 1]
    if prev == _ZWJ or ch == _ZWJ or (prev == "\r" and ch == "\n"):
        return False
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:
        return False
    if 0xDC00 <= cp <= 0xDFFF and 0xD800 <= ord(prev) <= 0xDBFF:  # lone surrogates kept paired
        return False
    return unicodedata.combining(ch) == 0


class _Splitter:
    """Splitting state for one text (fences parsed once)."""

    def __init__(self, text: str, limit: int, measure: Measure) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.text = text
        self.limit = limit
        self.measure = measure
        self.fences = _parse_fences(text)
        self._starts = [f.open_start for f in self.fences]

    # -- fence lookups -------------------------------------------------------------
    def _fence_before(self, i: int) -> _Fence | None:
        """The last fence whose opening line starts strictly before ``i``."""
        k = bisect_left(self._starts, i) - 1
        return self.fences[k] if k >= 0 else None

    def prefix_at(self, r: int) -> str:
        f = self._fence_before(r)
        if f is not None and f.content_start <= r < f.close_start:
            return f.open_line + "\n"
        return ""

    def suffix_at(self, c: int) -> str:
        f = self._fence_before(c)
        if f is not None and c <= f.close_start:
            return "\n" + f.marker
        return ""

    def cut_ok(self, c: int, r: int) -> bool:
        """A cut must not leave a bare opening line or start the next chunk at a closing one."""
        f = self._fence_before(c)
        if f is not None:
            if c <= f.content_start:
                return False
            if f.closed and f.close_start < c < f.close_end:
                return False
        g = self._fence_before(r)
        return not (g is not None and g.closed and g.close_start <= r < g.close_end)

    # -- measuring -----------------------------------------------------------------
    def max_fit(self, pos: int, prefix: str) -> int:
        """Largest ``hi`` with ``measure(prefix + text[pos:hi]) <= limit`` (binary search)."""
        text, measure, limit = self.text, self.measure, self.limit
        lo, hi = pos, min(len(text), pos + limit)
        if measure(prefix + text[pos:hi]) <= limit:
            return hi
        while lo < hi - 1:
            mid = (lo + hi) // 2
            if measure(prefix + text[pos:mid]) <= limit:
                lo = mid
            else:
                hi = mid
        return lo

    def fits(self, pos: int, c: int, prefix: str) -> bool:
        return self.measure(prefix + self.text[pos:c] + self.suffix_at(c)) <= self.limit

    # -- choosing a cut ------------------------------------------------------------
    def choose(self, pos: int, hi: int, prefix: str) -> tuple[int, int, bool]:
        """Return ``(cut, resume, decorated)`` for the chunk starting at ``pos``."""
        text = self.text
        nl_runs: list[re.Match[str]] = []
        for m in _NL_RUN.finditer(text, pos + 1):
            if m.start() > hi:
                break
            nl_runs.append(m)
        words: list[tuple[int, int]] = []
        for m in _WORD_RUN.finditer(text, pos + 1):
            s, e = m.start(), m.end()
            if s > hi:
                break
            if (e < len(text) and text[e] == "\n") or text[s - 1] == "\n":
                continue  # trailing spaces or indentation: the line break is the boundary
            words.append((s, e))
        para = [(m.start(), m.end()) for m in nl_runs if m.group().count("\n") > 1]
        lines = [(m.start(), m.end()) for m in nl_runs]
        levels: list[list[tuple[int, int]]] = [
            [cr for cr in para if not self.suffix_at(cr[0])],
            [cr for cr in lines if not self.suffix_at(cr[0])],
            [cr for cr in lines if self.suffix_at(cr[0])],
            words,
        ]
        window = max(1, hi - pos)
        for level in levels:
            best = self._best(pos, level, prefix)
            if best is not None and (best[0] - pos) >= _FILL * window:
                return best[0], best[1], True
        # Nothing natural fills half the window. A paragraph break still ends a message
        # well (a short paragraph is a complete thought); a lone line or word break that
        # early would waste a message ("echo:" alone), so the window is hard split instead.
        short_para = self._best(pos, levels[0], prefix)
        if short_para is not None:
            return short_para[0], short_para[1], True
        # Hard split: prefer grapheme-friendly positions close to the window's end.
        for strict in (True, False):
            c = hi
            floor = pos if not strict else max(pos, hi - 32)
            while c > floor:
                if (
                    (not strict or _break_ok(text, c))
                    and self.cut_ok(c, c)
                    and self.fits(pos, c, prefix)
                    and _NON_WS.search(text, pos, c)
                ):
                    return c, c, True
                c -= 1
        # Limit too small for fence decorations: plain hard split.
        c = max(pos + 1, self.max_fit(pos, ""))
        return c, c, False

    def _best(self, pos: int, cands: list[tuple[int, int]], prefix: str) -> tuple[int, int] | None:
        for c, r in reversed(cands):
            if (
                self.cut_ok(c, r)
                and _NON_WS.search(self.text, pos, c)
                and self.fits(pos, c, prefix)
            ):
                return c, r
        return None

    # -- driving -------------------------------------------------------------------
    def run(self, start: int, stream: bool) -> tuple[list[Chunk], Chunk | None]:
        text, n = self.text, len(self.text)
        chunks: list[Chunk] = []
        pos = start
        if pos > 0:
            # Continuing mid-text: drop the separator we landed on (newlines only in code).
            skip = "\n\r" if self.prefix_at(pos) else " \t\n\r"
            while pos < n and text[pos] in skip:
                pos += 1
        while _NON_WS.search(text, pos):
            prefix = self.prefix_at(pos)
            if self.measure(prefix + text[pos:]) <= self.limit:
                last = Chunk(pos, n, text[pos:], prefix, "")
                if stream:
                    return chunks, last
                chunks.append(last)
                break
            hi = self.max_fit(pos, prefix)
            if stream and not _stable_after(text, hi):
                return chunks, Chunk(pos, n, text[pos:], prefix, "")
            c, r, decorated = self.choose(pos, hi, prefix)
            if decorated:
                chunks.append(Chunk(pos, c, text[pos:c], prefix, self.suffix_at(c)))
            else:
                chunks.append(Chunk(pos, c, text[pos:c]))
            pos = r
        return chunks, None


def split_chunks(text: str, limit: int, *, measure: Measure = len, start: int = 0) -> list[Chunk]:
    """Split ``text`` (from index ``start``) into chunks that each measure ``<= limit``.

    A text that fits is returned whole; a blank text gives no chunks.
    """
    chunks, _ = _Splitter(text, limit, measure).run(start, stream=False)
    return chunks


def split_message(text: str, limit: int, *, measure: Measure = len) -> list[str]:
    """The texts of :func:`split_chunks`: what to send, in order."""
    return [c.text for c in split_chunks(text, limit, measure=measure)]


def split_stream(
    text: str, limit: int, *, measure: Measure = len, start: int = 0
) -> tuple[list[Chunk], Chunk | None]:
    """Split text that is still growing.

    Returns ``(frozen, tail)``: ``frozen`` are the leading chunks that
    ``split_chunks(text + more, ...)`` yields for ANY ``more`` (their cut depends only on
    text already present: a complete line with content follows the window), and ``tail``
    is the rest (prefix + body, no suffix, possibly over the limit), or ``None`` if the rest
    is blank.
    """
    return _Splitter(text, limit, measure).run(start, stream=True)


_SENTENCE_END = re.compile(r"[.!?…:;][\"')\]»”’*_]*\Z")


def clean_end(
    text: str, start: int, end: int, limit: int, *, measure: Measure = len, finished: bool = False
) -> Chunk:
    """The best finished message for ``text[start:end]`` when it must stop at or before ``end``.

    Used when a message can no longer grow (the platform refused an edit): it should end
    where a reader expects a message to end, not mid-word. The cut goes back to the start
    of the paragraph ``end`` is in, else of the sentence (or line), else of the word, taking
    the most natural of those that keeps at least half of the span; a word start is taken
    however early it is. ``end`` itself counts when whitespace follows it. The returned
    chunk closes a code block it ends inside (``suffix``) and reopens one it starts in
    (``prefix``), and fits ``limit``. If there is no boundary at all (one long word), the
    chunk ends at ``end``. ``finished`` says the text is complete, so reaching its end
    (trailing whitespace aside) is the best boundary of all.
    """
    sp = _Splitter(text, limit, measure)
    prefix = sp.prefix_at(start)
    end = min(end, len(text))
    if finished and not text[end:].strip():
        end = len(text.rstrip())
        return Chunk(start, end, text[start:end], prefix, sp.suffix_at(end))
    levels: list[list[int]] = [[], [], []]  # paragraph, sentence or line, word
    for m in _WS_RUN.finditer(text, start + 1):
        c, run = m.start(), m.group()
        if c > end:
            break
        if not sp.cut_ok(c, m.end()) or not sp.fits(start, c, prefix):
            continue
        if run.count("\n") >= 2:
            levels[0].append(c)
        elif "\n" in run or _SENTENCE_END.search(text, start, c):
            levels[1].append(c)
        else:
            levels[2].append(c)
    span = max(1, end - start)
    for level, need in ((0, _FILL), (1, _FILL), (2, 0.0)):
        cands = [c for lv in range(level + 1) for c in levels[lv]]
        if cands and max(cands) - start >= need * span:
            cut = max(cands)
            return Chunk(start, cut, text[start:cut], prefix, sp.suffix_at(cut))
    return Chunk(start, end, text[start:end], prefix, sp.suffix_at(end))


def truncate(text: str, limit: int, *, measure: Measure = len) -> str:
    """The longest prefix of ``text`` that measures ``<= limit``, cut between characters."""
    if measure(text) <= limit:
        return text
    sp = _Splitter(text, limit, measure)
    hi = sp.max_fit(0, "")
    c = hi
    while c > max(0, hi - 32) and not _break_ok(text, c):
        c -= 1
    return text[: c if c > 0 else hi]


__all__ = [
    "Chunk",
    "clean_end",
    "Measure",
    "split_chunks",
    "split_message",
    "split_stream",
    "truncate",
    "utf16_len",
]
