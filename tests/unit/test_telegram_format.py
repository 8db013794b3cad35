"""Markdown to Telegram HTML: mapping, escaping, and well-formedness on hostile input."""

from __future__ import annotations

import html
import random
from html.parser import HTMLParser

import pytest

from hermes_gateway.delivery.chunking import utf16_len
from hermes_gateway.delivery.telegram_format import markdown_to_telegram_html as to_html

ALLOWED = {"b", "i", "s", "u", "code", "pre", "a", "blockquote"}
ENTITIES = {"amp", "lt", "gt", "quot"}


class TelegramHTMLValidator(HTMLParser):
    """Rejects anything Telegram's HTML parse mode would refuse (or misread)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.errors.append(f"tag <{tag}> not allowed")
        names = {k for k, _ in attrs}
        if tag == "a":
            if names != {"href"}:
                self.errors.append(f"<a> attributes {names}")
        elif tag == "code" and attrs:
            if names != {"class"} or self.stack[-1:] != ["pre"]:
                self.errors.append("code class outside pre")
            elif not (dict(attrs)["class"] or "").startswith("language-"):
                self.errors.append("bad code class")
        elif attrs:
            self.errors.append(f"<{tag}> has attributes {attrs}")
        if "pre" in self.stack and tag != "code":
            self.errors.append(f"<{tag}> inside <pre>")
        if "code" in self.stack:
            self.errors.append(f"<{tag}> inside <code>")
        if tag in self.stack:
            self.errors.append(f"<{tag}> nested in itself")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> does not close {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for ch in "<>&":
            if ch in data:
                self.errors.append(f"raw {ch!r} in text {data!r}")
        self.visible.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ENTITIES:
            self.errors.append(f"entity &{name};")
        self.visible.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.visible.append(html.unescape(f"&#{name};"))

    def handle_comment(self, data: str) -> None:
        self.errors.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.errors.append("declaration")

    def unknown_decl(self, data: str) -> None:
        self.errors.append("unknown declaration")

    def handle_pi(self, data: str) -> None:
        self.errors.append("processing instruction")


def check(out: str) -> str:
    """Assert ``out`` is well-formed Telegram HTML; return its visible text."""
    v = TelegramHTMLValidator()
    v.feed(out)
    v.close()
    assert not v.errors, (v.errors, out)
    assert not v.stack, (f"unclosed {v.stack}", out)
    assert v.rawdata == "", ("unparsed tail", v.rawdata)
    return "".join(v.visible)


def render(md: str) -> tuple[str, str]:
    out = to_html(md)
    return out, check(out)


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        ("**bold** and __bold__", "<b>bold</b> and <b>bold</b>"),
        ("*it* and _it_", "<i>it</i> and <i>it</i>"),
        ("~~gone~~", "<s>gone</s>"),
        ("use `x < y && z`", "use <code>x &lt; y &amp;&amp; z</code>"),
        ("``a ` b``", "<code>a ` b</code>"),
        (
            "[site](https://example.com/?a=1&b=2)",
            '<a href="https://example.com/?a=1&amp;b=2">site</a>',
        ),
        ("[**bold** link](https://x.org)", '<a href="https://x.org"><b>bold</b> link</a>'),
        ("# Title", "<b>Title</b>"),
        ("### Sub **title** ###", "<b>Sub title</b>"),
        ("> quoted *line*\n> second", "<blockquote>quoted <i>line</i>\nsecond</blockquote>"),
        ("- one\n* two\n  + nested", "• one\n• two\n  • nested"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("**a *b* c**", "<b>a <i>b</i> c</b>"),
        ("***both***", "<b><i>both</i></b>"),
        ("a\\*not italic\\*", "a*not italic*"),
        ("snake_case_name and file_name.py", "snake_case_name and file_name.py"),
        ("2*3*4 = 24", "2*3*4 = 24"),
        ("a * b * c", "a * b * c"),
        ("<https://example.com>", "https://example.com"),
        ("---", "———"),
        ("* * *", "———"),
        ("#hashtag", "#hashtag"),
    ],
)
def test_mapping(md: str, expected: str) -> None:
    out, _ = render(md)
    assert out == expected


def test_code_block_with_language_escapes_html() -> None:
    md = "Look:\n```python\nif a < b and c > d:\n    print('<b>&amp;</b>')\n```\nend **x**"
    out, visible = render(md)
    assert '<pre><code class="language-python">' in out
    assert "if a &lt; b and c &gt; d:" in out
    assert "print('&lt;b&gt;&amp;amp;&lt;/b&gt;')" in out
    assert out.endswith("end <b>x</b>")
    assert "print('<b>&amp;</b>')" in visible  # shown exactly as written


def test_code_block_without_or_with_odd_language() -> None:
    assert to_html("```\nx\n```") == "<pre>x</pre>"
    out, _ = render('```"><script>\nx\n```')
    assert out == "<pre>x</pre>"
    out, _ = render("~~~c++\nint main();\n~~~")
    assert out == '<pre><code class="language-c++">int main();</code></pre>'


def test_markdown_inside_code_is_literal() -> None:
    out, visible = render("```\n**not bold** _nor_ [x](https://a.b)\n```")
    assert "<b>" not in out and "<a" not in out
    assert visible == "**not bold** _nor_ [x](https://a.b)"


@pytest.mark.parametrize(
    "md",
    [
        "<script>alert(1)</script>",
        "&amp; &lt; & < > &#x41; &unknown;",
        '<a href="javascript:alert(1)">x</a>',
        "<b>not a tag</b>",
        "1 < 2 > 0 && true",
        "<!-- comment --> <?pi?> <!DOCTYPE html>",
    ],
)
def test_hostile_text_is_shown_literally(md: str) -> None:
    out, visible = render(md)
    assert visible == md  # every character reaches the user as typed
    assert "<script" not in out


def test_unsafe_link_targets_stay_text() -> None:
    for url in ("javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "relative/path"):
        out, visible = render(f"[click]({url})")
        assert "<a" not in out
        assert visible == f"[click]({url})"


def test_link_href_attribute_is_escaped() -> None:
    out, _ = render('[x](https://e.com/?q="><script>)')
    assert "<script" not in out


@pytest.mark.parametrize(
    ("md", "visible"),
    [
        ("**unclosed bold", "**unclosed bold"),
        ("*unclosed italic", "*unclosed italic"),
        ("_open", "_open"),
        ("~~strike", "~~strike"),
        ("`open code", "`open code"),
        ("[label](https://half", "[label](https://half"),
        ("**bold _mixed** closed_", None),
        ("**a **b** c**", None),
        ("__a **b__ c**", None),
        ("*a **b* c**", None),
        ("> **quote never closed", "**quote never closed"),
        ("# **heading never closed", "**heading never closed"),
    ],
)
def test_unbalanced_markers_stay_literal_and_valid(md: str, visible: str | None) -> None:
    _, shown = render(md)
    if visible is not None:
        assert shown == visible


def test_partial_fence_mid_stream_is_code_to_the_end() -> None:
    md = "Intro **bold**\n```js\nconst a = '<div>';\nif (a && b) {"
    out, visible = render(md)
    assert out.startswith('Intro <b>bold</b>\n<pre><code class="language-js">')
    assert out.endswith("</code></pre>")
    assert "const a = '<div>';\nif (a && b) {" in visible
    # Every prefix of a streamed answer renders to valid HTML.
    full = (
        "# Plan\n\nSome **bold** and *italic* with `code` and a [link](https://a.io).\n"
        "> note: _careful_\n- item ~~one~~\n```python\nprint('<x>')\n```\nDone & dusted."
    )
    for i in range(len(full) + 1):
        check(to_html(full[:i] + " ▌"))


def test_blank_and_whitespace() -> None:
    assert to_html("") == ""
    assert to_html("a\n\nb") == "a\n\nb"


ALPHABET = list("ab c\n*_~`[]()<>&#>-!\\") + ["```", "```py\n", "**", "__", "~~", "https://x.y"]


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_always_well_formed(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        md = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 60)))
        out = to_html(md)
        visible = check(out)
        # Chunks are measured on the Markdown: what Telegram counts must never be longer.
        assert utf16_len(visible) <= utf16_len(md)
        # Letters are never lost or invented (except a fence's language, which is markup).
        if "```" not in md and "](" not in md:
            assert [c for c in visible if c.isalpha()] == [c for c in md if c.isalpha()], md
