"""SMS pieces without sockets: segment counting and splitting, Twilio signatures, Markdown."""

from __future__ import annotations

from hermes_gateway.delivery.plain_text import markdown_to_plain
from hermes_gateway.platforms.sms.segments import count_segments, encoding_of, split_sms
from hermes_gateway.platforms.sms.signature import signature, valid_signature
from tests.fakes.twilio_server import twilio_signature


def test_segment_limits_gsm7_and_ucs2():
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3
    # Extension characters take two septets.
    assert count_segments("€" * 80).segments == 1
    assert count_segments("€" * 81).segments == 2
    # ...and never straddle two parts: 152 septets + one escape pair goes to the next part.
    assert count_segments("a" * 152 + "€" + "a" * 10).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3
    assert encoding_of("plain ascii [ok]") == "GSM-7"
    assert encoding_of("curly ’quote") == "UCS-2"
    assert count_segments("é" * 160).segments == 1  # é is in the GSM alphabet
    assert count_segments("ж" * 70).segments == 1
    assert count_segments("ж" * 71).segments == 2
    assert count_segments("ж" * 134).segments == 2
    assert count_segments("ж" * 135).segments == 3
    # An emoji is a surrogate pair: two UTF-16 units, never split.
    assert count_segments("🙂" * 35).segments == 1
    assert count_segments("🙂" * 36).segments == 2


def test_split_respects_per_message_and_total_caps():
    text = " ".join(["word"] * 2000)
    bodies = split_sms(text, per_message=10, max_total=30)
    assert all(count_segments(b).segments <= 10 for b in bodies)
    assert sum(count_segments(b).segments for b in bodies) <= 30
    assert bodies[-1].endswith("[answer cut: too long for SMS]")
    short = split_sms("hello there", per_message=10, max_total=30)
    assert short == ["hello there"]
    single = split_sms("x " * 200, per_message=1, max_total=30)
    assert all(count_segments(b).segments == 1 for b in single)
    assert split_sms("") == []


def test_signature_matches_twilios_algorithm_and_port_forms():
    params = [("From", "+15551230001"), ("Body", "hi & bye"), ("MessageSid", "SM1")]
    url = "https://example.test/webhooks/twilio?x=1"
    expected = twilio_signature("tok", url, dict(params))
    assert signature("tok", url, params) == expected
    assert valid_signature("tok", url, params, expected)
    assert not valid_signature("other", url, params, expected)
    assert not valid_signature("tok", url, [*params[:2], ("MessageSid", "SM2")], expected)
    assert not valid_signature("tok", url, params, "")
    assert not valid_signature("tok", url, params, "ünïcode")
    # Twilio may sign with the default port spelled out, or not.
    with_port = "https://example.test:443/webhooks/twilio?x=1"
    assert valid_signature("tok", url, params, twilio_signature("tok", with_port, dict(params)))
    assert valid_signature("tok", with_port, params, expected)


def test_markdown_to_plain():
    text = (
        "# Title\n**bold** *it* _u_ `code *x*` [link](https://a.b) ~~gone~~\n"
        "- one\n* two\n> quoted\n```py\nx = **1**\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        "snake_case_name 2*3*4 \\*literal\\*"
    )
    assert markdown_to_plain(text) == (
        "Title\nbold it u code *x* link (https://a.b) gone\n• one\n• two\nquoted\n"
        "x = **1**\na  b\n1  2\nsnake_case_name 2*3*4 *literal*"
    )
