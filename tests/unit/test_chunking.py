"""Splitting answers under platform limits: boundaries, code fences, UTF-16, streaming."""

from __future__ import annotations

import random
import re

import pytest

from hermes_gateway.delivery.chunking import (
    Chunk,
    split_chunks,
    split_message,
    split_stream,
    truncate,
    utf16_len,
)

FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$", re.M)


def assert_contract(text: str, chunks: list[Chunk], limit: int, measure=len) -> None:
    """The documented contract of split_chunks, checked piece by piece."""
    if not text.strip():
        assert chunks == []
        return
    assert chunks, "non-blank text must give at least one chunk"
    assert chunks[0].start == 0
    prev_end = None
    for c in chunks:
        assert measure(c.text) <= limit, (measure(c.text), limit, c)
        assert c.body == text[c.start : c.end]
        assert c.text == c.prefix + c.body + c.suffix
        assert c.body.strip(), "no blank chunk"
        if c.prefix:
            assert re.fullmatch(r" {0,3}(`{3,}|~{3,})[^\n]*\n", c.prefix), c.prefix
        if c.suffix:
            assert re.fullmatch(r"\n(`{3,}|~{3,})", c.suffix), c.suffix
        if prev_end is not None:
            assert prev_end <= c.start
            assert text[prev_end : c.start].strip() == "", "only whitespace between chunks"
        prev_end = c.end
    assert text[chunks[-1].end :].strip() == ""
    # Reassembly: bodies joined with the consumed separators give back the text exactly.
    rebuilt = ""
    pos = 0
    for c in chunks:
        rebuilt += text[pos : c.start] + c.body
        pos = c.end
    rebuilt += text[pos:]
    assert rebuilt == text


def fences_balanced(chunk_text: str) -> bool:
    """Every chunk, rendered alone, must open and close its code blocks."""
    in_fence = None
    for m in FENCE_LINE.finditer(chunk_text):
        marker, info = m.group(1), m.group(2)
        if in_fence is None:
            in_fence = marker
        elif marker[0] == in_fence[0] and len(marker) >= len(in_fence) and not info.strip():
            in_fence = None
    return in_fence is None


def test_utf16_len_counts_surrogate_pairs() -> None:
    assert utf16_len("") == 0
    assert utf16_len("abc") == 3
    assert utf16_len("é") == 1
    assert utf16_len("😀") == 2
    assert utf16_len("a😀b👍🏽") == 1 + 2 + 1 + 2 + 2


def test_short_and_blank_texts() -> None:
    assert split_message("hello", 10) == ["hello"]
    assert split_message("  keep  \n", 10) == ["  keep  \n"]
    assert split_message("", 10) == []
    assert split_message(" \n\n ", 10) == []
    with pytest.raises(ValueError):
        split_message("x", 0)


def test_prefers_paragraph_boundary() -> None:
    para1 = "First paragraph has a few words in it."
    para2 = "Second one, also with words.\nAnd a second line."
    text = f"{para1}\n\n{para2}"
    assert split_message(text, 60) == [para1, para2]


def test_prefers_line_over_word() -> None:
    text = "line one is here\nline two is here\nline three is here"
    chunks = split_message(text, 40)
    assert chunks == ["line one is here\nline two is here", "line three is here"]


def test_word_split_never_breaks_words() -> None:
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 9))) for _ in range(400)]
    text = " ".join(words)
    chunks = split_message(text, 50)
    assert all(len(c) <= 50 for c in chunks)
    assert " ".join(chunks).split() == words
    assert all(c == c.strip() for c in chunks)


def test_hard_split_fills_the_limit() -> None:
    text = "x" * 25
    assert split_message(text, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_small_paragraph_does_not_waste_a_message() -> None:
    # A paragraph break very early in the window is worse than a line break near its end.
    text = "Hi.\n\n" + "\n".join(f"line number {i}" for i in range(20))
    chunks = split_message(text, 100)
    assert len(chunks[0]) > 50


def test_emoji_respect_utf16_limit() -> None:
    text = "😀" * 10
    chunks = split_message(text, 5, measure=utf16_len)
    assert chunks == ["😀😀"] * 5
    # With len() the same chunks would be too long for Telegram: the measure matters.
    long_text = ("emoji 😀 " * 800).strip()
    by_len = split_message(long_text, 4096)
    assert utf16_len(by_len[0]) > 4096
    by_utf16 = split_message(long_text, 4096, measure=utf16_len)
    assert all(utf16_len(c) <= 4096 for c in by_utf16)
    assert "".join(by_utf16).replace(" ", "") == long_text.replace(" ", "")


def test_hard_split_keeps_emoji_sequences_whole() -> None:
    family = "👨\u200d👩\u200d👧"  # 5 code points, 8 UTF-16 units
    thumbs = "👍🏽"  # base + skin tone modifier
    accent = "e\u0301"  # e + combining acute
    text = (family + thumbs + accent) * 6
    for limit in (9, 12, 15, 20):
        chunks = split_message(text, limit, measure=utf16_len)
        assert "".join(chunks) == text
        for c in chunks:
            assert utf16_len(c) <= limit
            assert not c.startswith(("\u200d", "\U0001f3fd", "\u0301"))
            assert not c.endswith("\u200d")


def test_split_inside_code_block_closes_and_reopens_with_language() -> None:
    code = "\n".join(f"    print({i})  # line {i}" for i in range(30))
    text = f"Here is code:\n\n```python\n{code}\n```\n\nDone."
    chunks = split_chunks(text, 200)
    assert_contract(text, chunks, 200)
    texts = [c.text for c in chunks]
    assert len(texts) >= 3
    middle = [t for t in texts if t.startswith("```python\n")]
    assert len(middle) >= 2, texts
    for t in texts:
        assert fences_balanced(t), t
    # Added fence lines are counted within the limit.
    assert all(len(t) <= 200 for t in texts)
    # Removing the added fences and joining gives the code back (newlines at splits).
    bodies = [c.body for c in chunks]
    assert "\n".join(bodies).replace("\n\n", "\n") == text.replace("\n\n", "\n")
    assert texts[-1].endswith("Done.")


def test_tilde_and_long_fences_are_reopened_exactly() -> None:
    inner = "\n".join("x = 1" for _ in range(40))
    for opening, closing in (("~~~rust", "~~~"), ("````md", "````")):
        text = f"{opening}\n{inner}\n{closing}\nafter"
        chunks = split_chunks(text, 60)
        assert_contract(text, chunks, 60)
        assert chunks[1].prefix == opening + "\n"
        assert chunks[0].suffix == "\n" + closing
        assert all(fences_balanced(c.text) for c in chunks)


def test_never_splits_after_opening_line_or_before_closing_line() -> None:
    for n in range(1, 40):
        text = "word " * n + "\n```js\nlet a = 1;\nlet b = 2;\n```\nend " * 3
        for limit in (30, 45, 64):
            chunks = split_chunks(text, limit)
            assert_contract(text, chunks, limit)
            for c in chunks:
                assert not c.body.rstrip().endswith("```js"), c
                assert not c.body.startswith("```\n") or c.prefix == "", c
                assert fences_balanced(c.text), c.text


def test_unclosed_fence_is_split_and_left_open_at_the_end() -> None:
    text = "Start\n```sh\n" + "\n".join(f"echo {i}" for i in range(40))
    chunks = split_chunks(text, 80)
    assert_contract(text, chunks, 80)
    assert all(fences_balanced(c.text) for c in chunks[:-1])
    assert chunks[-1].prefix == "```sh\n"
    assert not fences_balanced(chunks[-1].text)  # as open as the source


def test_start_continues_mid_text_with_fence_state() -> None:
    text = "intro\n```py\na = 1\nb = 2\nc = 3\n```\nout"
    start = text.index("b = 2")
    chunks = split_chunks(text, 100, start=start)
    assert chunks[0].prefix == "```py\n"
    assert chunks[0].start == start
    assert chunks[0].text == "```py\nb = 2\nc = 3\n```\nout"
    assert split_chunks(text, 100, start=text.index("\nout"))[0].text == "out"


def test_tiny_limit_still_makes_progress() -> None:
    text = "```python\nabc\n```"
    chunks = split_message(text, 4)
    assert all(len(c) <= 4 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")


def random_markdown(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 14)):
        kind = rng.random()
        if kind < 0.35:
            words = [
                rng.choice(
                    ["alpha", "beta", "γάμμα", "😀", "👍🏽", "x" * rng.randint(1, 70), "a_b"]
                )
                for _ in range(rng.randint(1, 30))
            ]
            parts.append(" ".join(words))
        elif kind < 0.55:
            lang = rng.choice(["", "python", "js", "c++"])
            fence = rng.choice(["```", "~~~", "````"])
            body = "\n".join(
                "    " * rng.randint(0, 2) + "code " * rng.randint(0, 12)
                for _ in range(rng.randint(0, 12))
            )
            close = "" if rng.random() < 0.1 else f"\n{fence}"
            parts.append(f"{fence}{lang}\n{body}{close}")
        elif kind < 0.75:
            parts.append("\n".join(f"- item {i} " + "z" * rng.randint(0, 30) for i in range(5)))
        else:
            parts.append("")
    sep = rng.choice(["\n\n", "\n", "\n\n\n"])
    return sep.join(parts)


@pytest.mark.parametrize("seed", range(6))
def test_contract_on_random_markdown(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(40):
        text = random_markdown(rng)
        for limit, measure in ((40, len), (97, utf16_len), (300, len)):
            chunks = split_chunks(text, limit, measure=measure)
            assert_contract(text, chunks, limit, measure)
            for c in chunks:
                if c.prefix or c.suffix:
                    assert fences_balanced(c.text) or c is chunks[-1]


@pytest.mark.parametrize("seed", range(4))
def test_stream_frozen_chunks_never_change(seed: int) -> None:
    """What split_stream freezes for a prefix is exactly what the full text will give."""
    rng = random.Random(100 + seed)
    for _ in range(15):
        text = random_markdown(rng) + "\n\nthe end"
        for limit, measure in ((50, len), (120, utf16_len)):
            full = split_chunks(text, limit, measure=measure)
            full_stripped = split_chunks(text.rstrip(), limit, measure=measure)
            cuts = sorted({rng.randint(0, len(text)) for _ in range(12)} | {len(text)})
            for cut in cuts:
                frozen, tail = split_stream(text[:cut], limit, measure=measure)
                assert frozen == full[: len(frozen)], (cut, frozen, full)
                assert frozen == full_stripped[: len(frozen)]
                if tail is not None:
                    assert tail.end == cut
                    assert len(frozen) < len(full)


def test_stream_waits_for_a_complete_line_after_the_window() -> None:
    text = "a" * 30 + " " + "b" * 30
    frozen, tail = split_stream(text, 40)
    assert frozen == [] and tail is not None and tail.body == text
    frozen, tail = split_stream(text + " c\nmore", 40)
    assert [c.text for c in frozen] == ["a" * 30]
    assert tail is not None and tail.body.startswith("b" * 30)


def test_truncate() -> None:
    assert truncate("hello", 10) == "hello"
    assert truncate("hello world", 5) == "hello"
    assert truncate("ab😀cd", 3, measure=utf16_len) == "ab"
    assert truncate("ab😀cd", 4, measure=utf16_len) == "ab😀"


# -- a natural break must fill half the window; fences opened mid-line -----------------


def test_early_word_break_does_not_waste_a_message() -> None:
    # Before: ["echo:", 2000 x's, 1990 x's]; a one-word message is not a natural split.
    text = "echo: " + "x" * 3990
    chunks = split_message(text, 2000)
    assert [len(c) for c in chunks] == [2000, 1996]
    assert chunks[0].startswith("echo: x")
    assert "".join(chunks) == text


def test_early_line_break_does_not_waste_a_message() -> None:
    text = "Output:\n" + "y" * 250
    chunks = split_message(text, 100)
    assert [len(c) for c in chunks] == [100, 100, 58]


def test_short_paragraph_still_ends_a_message() -> None:
    text = "Intro.\n\n" + "z" * 150
    assert split_message(text, 100) == ["Intro.", "z" * 100, "z" * 50]


def mid_line_fences_balanced(chunk_text: str) -> bool:
    """Like ``fences_balanced``, but a ``` run after text on a line opens a block too."""
    in_fence: str | None = None
    for line in chunk_text.split("\n"):
        if in_fence is None:
            m = re.search(r"(`{3,})([^`]*)$", line)
            if FENCE_LINE.fullmatch(line):
                in_fence = FENCE_LINE.fullmatch(line).group(1)  # type: ignore[union-attr]
            elif m and line.count("`") == len(m.group(1)):
                in_fence = m.group(1)
        elif (m := re.fullmatch(r" {0,3}(`{3,}|~{3,})\s*", line)) and (
            m.group(1)[0] == in_fence[0] and len(m.group(1)) >= len(in_fence)
        ):
            in_fence = None
    return in_fence is None


def test_fence_opened_mid_line_is_closed_and_reopened() -> None:
    code = "\n".join(f"echo line {i}" for i in range(30))
    text = f"Run this: ```bash\n{code}\n```\nDone, and ```x``` stays inline."
    chunks = split_chunks(text, 120)
    assert_contract(text, chunks, 120)
    assert len(chunks) > 2
    assert chunks[0].text.startswith("Run this: ```bash\necho line 0")
    assert chunks[0].suffix == "\n```"
    for c in chunks[1:-1]:
        assert c.prefix == "```bash\n"
    assert all(mid_line_fences_balanced(c.text) for c in chunks)
    assert chunks[-1].text.endswith("Done, and ```x``` stays inline.")


def random_hostile_markdown(rng: random.Random) -> str:
    """Markdown with what splits badly: short lead-ins, long unbroken runs, mid-line fences."""
    parts: list[str] = []
    for _ in range(rng.randint(1, 10)):
        kind = rng.random()
        if kind < 0.25:
            parts.append(rng.choice(["echo:", "Note", "Output:", "ok"]) + rng.choice([" ", "\n"]))
            parts[-1] += rng.choice("xyz") * rng.randint(50, 400)
        elif kind < 0.45:
            body = "\n".join("code " * rng.randint(0, 12) for _ in range(rng.randint(1, 15)))
            parts.append(
                f"{rng.choice(['Run:', 'Then'])} ```{rng.choice(['', 'sh'])}\n{body}\n```\n"
            )
        elif kind < 0.7:
            parts.append(random_markdown(rng) + "\n")
        else:
            parts.append(" ".join(rng.choice(["alpha", "beta", "w" * 30]) for _ in range(40)))
    return rng.choice(["\n\n", "\n", " "]).join(parts)


@pytest.mark.parametrize("seed", range(6))
def test_chunks_fill_half_the_limit_unless_last_or_paragraph(seed: int) -> None:
    rng = random.Random(500 + seed)
    for _ in range(40):
        text = random_hostile_markdown(rng)
        for limit in (60, 150, 400):
            chunks = split_chunks(text, limit)
            assert_contract(text, chunks, limit)  # within the limit, reassembles exactly
            for c in chunks[:-1]:
                after = text[c.end :]
                at_paragraph = re.match(r"[ \t]*\n[ \t]*\n", after) is not None
                assert len(c.text) >= limit / 2 or at_paragraph, (limit, c, after[:40])
            for c in chunks:
                if c.prefix or c.suffix:
                    assert mid_line_fences_balanced(c.text) or c is chunks[-1]


def test_stream_split_of_a_long_line_without_newlines_is_linear_and_unchanged():
    """A 200k-character line (a pasted blob echoed back) used to cost ~45 s of blocked loop
    in the stability check; the linear check must decide exactly like the regex."""
    from hermes_gateway.delivery.chunking import _STABLE_RE, _stable_after

    rng = random.Random(7)
    for _ in range(5000):
        s = "".join(rng.choice(" \n\tab") for _ in range(rng.randint(0, 14)))
        i = rng.randint(0, len(s))
        assert _stable_after(s, i) == bool(_STABLE_RE.search(s, i)), (s, i)
    text = "echo: " + "x" * 200_000
    frozen, tail = split_stream(text, 39_000)
    assert frozen == [] and tail is not None and tail.body == text
