"""Tests for hermes_gateway.text: the exact strings listings, notices and dialogs show."""

from __future__ import annotations

from hermes_gateway.text import (
    ago,
    ago_short,
    clip,
    minutes_in_words,
    minutes_left,
    one_line,
    rough_duration,
    safe_line,
    stopwatch,
)


def test_clip_keeps_line_breaks_and_is_exactly_limit_long() -> None:
    assert clip("a\nb", 3) == "a\nb"
    assert clip("abcdef", 4) == "abc…"
    assert len(clip("x" * 100, 10)) == 10


def test_one_line_squashes_whitespace_and_clips() -> None:
    assert one_line("  deploy\n the\tserver ", 80) == "deploy the server"
    assert one_line(None) == ""
    assert one_line("x" * 100) == "x" * 79 + "…"
    assert one_line("deploy the server", 8) == "deploy …"
    assert one_line("deploy the server", 8, trim=True) == "deploy…"


def test_safe_line_neutralises_control_characters() -> None:
    assert safe_line("\x1b[31mred\nname", 40) == "?[31mred?name"
    assert safe_line("", 40) == safe_line(None, 40) == "-"
    assert safe_line("abcdef", 4) == "abc…"


def test_ages() -> None:
    assert [ago(s) for s in (5, 300, 7200, 3 * 86_400)] == [
        "just now",
        "5 min ago",
        "2 h ago",
        "3 d ago",
    ]
    assert [ago_short(s) for s in (5, 300, 7200, 3 * 86_400)] == ["now", "5m", "2h", "3d"]


def test_durations() -> None:
    assert [stopwatch(s) for s in (0.42, 12.34, 125.4)] == ["0.4s", "12.3s", "2m05s"]
    assert [rough_duration(s) for s in (1.5, 45, 300)] == ["1.5 s", "45 s", "5 min"]
    assert [minutes_left(s) for s in (0, 1, 60, 61)] == [1, 1, 1, 2]
    assert [minutes_in_words(m) for m in (45, 90, 3060)] == ["45 min", "1 h 30 min", "2 d 3 h"]
