"""Reading and writing mail (platforms/email inbound + compose), on raw bytes, no servers."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from hermes_gateway.platforms.email.compose import (
    MAX_REFERENCES,
    ThreadContext,
    build_mail,
    reply_subject,
)
from hermes_gateway.platforms.email.inbound import (
    ignore_reason,
    parse_mail,
    sender_authenticated,
    strip_quoted,
    thread_key,
    thread_root,
)

AUTH = "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\r\n"


def raw(headers: str, body: str = "hello\r\n") -> bytes:
    return (headers + "\r\n" + body).encode()


def simple(extra: str = "", sender: str = "Alice <Alice@Example.org>") -> bytes:
    return raw(
        f"From: {sender}\r\nTo: bot@example.org\r\nSubject: Hi\r\nMessage-ID: <a@x>\r\n{extra}"
    )


def test_sender_subject_and_ids_are_read():
    mail = parse_mail(
        raw(
            "From: =?utf-8?q?J=C3=BCrgen?= <JU@Example.ORG>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
            "Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x>\r\n <b@x>\r\n"
        )
    )
    assert (mail.from_addr, mail.from_name, mail.subject) == ("ju@example.org", "Jürgen", "Grüße")
    assert (mail.message_id, mail.in_reply_to, mail.references) == (
        "<c@x>",
        "<b@x>",
        ["<a@x>", "<b@x>"],
    )
    assert thread_root(mail) == "<a@x>"


def test_a_mail_without_message_id_gets_a_stable_one():
    data = raw("From: a@example.org\r\nSubject: x\r\n")
    assert parse_mail(data).message_id == parse_mail(data).message_id
    assert parse_mail(data).message_id != parse_mail(data + b"more").message_id


def test_thread_roots():
    new = parse_mail(simple())
    assert thread_root(new) == "<a@x>"
    reply = parse_mail(simple("In-Reply-To: <z@x>\r\n"))
    assert thread_root(reply) == "<z@x>"
    assert ":" not in thread_key("<a:b@x>") and len(thread_key("<a@x>")) == 16


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Thanks!\n\nOn Mon, 1 Jan 2027, Bot wrote:\n> old\n> older\n", "Thanks!"),
        ("Sure.\n\n-----Original Message-----\nFrom: bot\nold text\n", "Sure."),
        ("> only a quote\n", "> only a quote"),
        ("Top\n> inline quote\nanswer below\n", "Top\n> inline quote\nanswer below"),
        ("Danke\n\nAm 1. Jan. schrieb Bot:\n> alt\n", "Danke"),
    ],
)
def test_the_quoted_history_is_cut_from_a_reply(text, kept):
    assert strip_quoted(text) == kept


def test_html_only_mail_is_read_as_text_and_attachments_are_kept():
    data = (
        b"From: a@example.org\r\nMessage-ID: <h@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>there</b></p><script>x()</script>\r\n"
        b"--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b'filename="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n'
    )
    mail = parse_mail(data)
    assert mail.body == "Hi there"
    assert [(a.file_name, a.mime_type, a.data) for a in mail.attachments] == [
        ("a.pdf", "application/pdf", b"%PDF-")
    ]


@pytest.mark.parametrize(
    ("extra", "sender", "reason"),
    [
        ("Auto-Submitted: auto-generated\r\n", None, "Auto-Submitted: auto-generated"),
        ("X-Autoreply: yes\r\n", None, "auto-reply"),
        ("X-Auto-Response-Suppress: All\r\n", None, "X-Auto-Response-Suppress"),
        ("Precedence: list\r\n", None, "Precedence: list"),
        ("", "MAILER-DAEMON@example.org", "bounce (mailer daemon)"),
        ("", "postmaster@example.org", "bounce (mailer daemon)"),
        ("Return-Path: <>\r\n", None, "bounce (null return path)"),
        ("List-Id: <x.example.org>\r\n", None, "mailing list"),
        ("List-Post: <mailto:x@example.org>\r\n", None, "mailing list"),
        ("", "bot@example.org", "our own mail"),
        ("", "", "no sender"),
    ],
)
def test_mail_that_must_never_be_answered(extra, sender, reason):
    mail = parse_mail(simple(extra, sender if sender is not None else "alice@example.org"))
    assert ignore_reason(mail, "Bot@Example.org") == reason


def test_one_of_our_answers_coming_back_is_not_answered():
    back = raw("From: list@example.org\r\nMessage-ID: <hermes.0a1b2c@example.org>\r\n")
    assert ignore_reason(parse_mail(back), "bot@example.org") == "our own mail"
    other = raw("From: list@example.org\r\nMessage-ID: <hermes.0a1b2c@elsewhere.org>\r\n")
    assert ignore_reason(parse_mail(other), "bot@example.org") is None


def test_ordinary_mail_may_be_answered():
    assert ignore_reason(parse_mail(simple("Auto-Submitted: no\r\n")), "bot@example.org") is None


def test_the_receiving_servers_verdict_decides_whether_from_is_believed():
    def verdict(headers: str, authserv: str = "") -> bool:
        mail = parse_mail(raw(headers + "From: alice@mail.example.org\r\nMessage-ID: <v@x>\r\n"))
        return sender_authenticated(mail, authserv)[0]

    assert verdict(AUTH)  # DMARC pass (relaxed alignment: a subdomain)
    assert not verdict("")  # no verdict at all
    assert not verdict("Authentication-Results: mx.example.org; dmarc=fail\r\n")
    assert verdict("Authentication-Results: mx; spf=pass smtp.mailfrom=bounce@example.org\r\n")
    assert not verdict("Authentication-Results: mx; spf=pass smtp.mailfrom=evil.example\r\n")
    assert verdict("Authentication-Results: mx; dkim=pass header.d=example.org\r\n")
    # Our server's verdict is on top; a pass the sender wrote lower down does not count.
    assert not verdict(
        "Authentication-Results: mx.example.org; dmarc=fail\r\n"
        "Authentication-Results: mx.example.org; dmarc=pass\r\n"
    )
    # Pinned to our server: another server's pass is not ours.
    assert not verdict("Authentication-Results: other.example; dmarc=pass\r\n", "mx.example.org")
    assert verdict(AUTH, "mx.example.org")


def test_reply_subject_has_one_re():
    assert reply_subject("Hello") == "Re: Hello"
    assert reply_subject("RE: Re: Hello") == "Re: Hello"
    assert reply_subject("Aw: Hallo") == "Re: Hallo"
    assert reply_subject("") == "Re: (no subject)"


def test_an_answer_is_a_proper_reply():
    ctx = ThreadContext(
        subject="Re: Plans",
        parent_id="<p@x>",
        references=[f"<r{n}@x>" for n in range(30)],
        parent_date="Mon, 1 Jan 2027 10:00:00 +0000",
        parent_from="Alice",
        quote="What now?\n\nThanks",
    )
    msg = build_mail(
        sender="bot@example.org", to="alice@example.org", body="Go.", ctx=ctx, quote=True
    )
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["Subject"] == "Re: Plans"
    assert parsed["In-Reply-To"] == "<p@x>"
    refs = str(parsed["References"]).split()
    assert len(refs) == MAX_REFERENCES and refs[0] == "<r0@x>" and refs[-1] == "<p@x>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed.get_content().replace("\r\n", "\n") == (
        "Go.\n\nOn Mon, 1 Jan 2027 10:00:00 +0000, Alice wrote:\n> What now?\n>\n> Thanks\n"
    )
    again = build_mail(
        sender="bot@example.org", to="alice@example.org", body="Go.", ctx=ctx, quote=True
    )
    assert again["Message-ID"] == msg["Message-ID"]  # the same answer is the same mail
    other = build_mail(
        sender="bot@example.org", to="alice@example.org", body="No.", ctx=ctx, quote=False
    )
    assert other["Message-ID"] != msg["Message-ID"]
    assert "wrote:" not in other.get_content()


def test_a_mail_answering_nothing_is_new():
    msg = build_mail(
        sender="bot@example.org", to="alice@example.org", body="Daily report", ctx=None, quote=True
    )
    assert msg["Subject"] == "Hermes Agent"
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_hostile_bytes_never_break_the_reader():
    import random

    rng = random.Random(19)
    pieces = [
        b"From: ",
        b"<",
        b">",
        b"@",
        b"=?utf-8?b?",
        b"?=",
        b"\r\n",
        b"\n",
        b":",
        b"\x00",
        b"\xff\xfe",
        b"Content-Type: multipart/mixed; boundary=",
        b"--",
        b"References: ",
        b"Authentication-Results: ",
        b";",
        b"dmarc=pass",
        b"Subject: ",
        b" ",
        b"a" * 50,
    ]
    for _ in range(2000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        mail = parse_mail(data)
        ignore_reason(mail, "bot@example.org")
        sender_authenticated(mail)
        thread_key(thread_root(mail))
        assert isinstance(mail.body, str)
