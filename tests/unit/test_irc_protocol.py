"""IRC lines: parsing with IRCv3 tags, building without injection, fitting text in 512 bytes,
and the flood bucket's pace (injected clock)."""

from __future__ import annotations

import pytest

from hermes_gateway.config import IrcConfig
from hermes_gateway.platforms.irc.flood import TokenBucket
from hermes_gateway.platforms.irc.inbound import IrcInbound
from hermes_gateway.platforms.irc.protocol import build, fit_lines, parse, text_budget


def test_parse_tags_source_and_trailing():
    msg = parse(
        "@msgid=abc;time=2026-01-01T00:00:00Z;note=a\\sb\\:c :nick!u@h PRIVMSG #chan :hi: there\r\n"
    )
    assert msg.tags == {"msgid": "abc", "time": "2026-01-01T00:00:00Z", "note": "a b;c"}
    assert (msg.source, msg.command, msg.params) == ("nick!u@h", "PRIVMSG", ("#chan", "hi: there"))
    assert parse("PING :irc.example").params == ("irc.example",)
    assert parse(":srv 005 me CHANTYPES=# NICKLEN=30 :are supported").params == (
        "me",
        "CHANTYPES=#",
        "NICKLEN=30",
        "are supported",
    )
    assert parse("").command == ""


def test_build_refuses_injection():
    assert build("PRIVMSG", "#c", "hello world") == "PRIVMSG #c :hello world"
    assert build("PRIVMSG", "#c", ":x") == "PRIVMSG #c ::x"
    with pytest.raises(ValueError):
        build("PRIVMSG", "#c", "hi\r\nQUIT :owned")
    with pytest.raises(ValueError):
        build("PRIVMSG", "#c x", "hi")


def test_fit_lines_counts_bytes_and_never_cuts_a_character():
    text = "é😀" * 200  # 1,200 bytes
    lines = fit_lines(text, 100)
    assert all(len(line.encode()) <= 100 for line in lines)
    assert "".join(lines) == text
    words = " ".join(["wörd"] * 100)
    lines = fit_lines(words, 60)
    assert all(len(line.encode()) <= 60 for line in lines) and " ".join(lines) == words
    assert fit_lines("one\n\n```py\ntwo **bold**\n```\n", 50) == ["one", "two bold"]
    assert fit_lines("\x01ACTION evil\x01", 50) == ["ACTION evil"]


def test_budget_counts_the_prefix_the_server_adds():
    budget = text_budget("bot", "bot!~bot@host.example", "PRIVMSG", "#chan")
    assert budget == 512 - 2 - len(":bot!~bot@host.example PRIVMSG #chan :")
    assert text_budget("bot", None, "PRIVMSG", "#chan") < budget


def test_mentions_follow_hermes_rule():
    inbound = IrcInbound(IrcConfig(nickname="Hermes"))
    event = inbound.normalize(parse(":Alice!a@h PRIVMSG #Chan :hermes, hi"))
    assert event is not None and event.mentioned and event.text == "hi"
    assert event.source.session_key == "irc:channel:#chan" and event.source.user_id == "alice"
    other = inbound.normalize(parse(":Alice!a@h PRIVMSG #chan :hermesbot hi"))
    assert other is not None and not other.mentioned
    dm = inbound.normalize(parse(":Alice!a@h PRIVMSG Hermes :\x01ACTION waves\x01"))
    assert dm is not None and dm.text == "* Alice waves" and dm.source.session_key == "irc:dm:alice"
    assert inbound.normalize(parse(":Alice!a@h PRIVMSG Hermes :\x01VERSION\x01")) is None
    assert inbound.normalize(parse(":hermes!h@h PRIVMSG #chan :hermes: echo")) is None


async def test_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(3, 2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        await bucket.take()
    assert slept[:0] == [] and len(slept) == 4
    assert sum(slept) == pytest.approx(2.0)  # 4 lines past the burst at 2/s
    now[0] += 10  # a quiet time refills only up to the burst
    slept.clear()
    for _ in range(3):
        await bucket.take()
    assert slept == []
