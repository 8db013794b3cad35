"""Email end to end on a real Dovecot and SMTP sink: replies, threads, who is answered."""

# ruff: noqa: F811 (the servers are fixtures imported from the harness)

from __future__ import annotations

import time

from hermes_gateway.agent.tools.boundary import workspace_for
from hermes_gateway.events import AccessDenied
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply
from tests.integration.email_harness import (  # noqa: F401 (fixtures)
    ALICE,
    MALLORY,
    dovecot,
    dovecot_server,
    email_gateway,
    sink,
)


def asked(openai: FakeOpenAI) -> list[str]:
    """The last user message of every model request (titles are kept apart)."""
    out = []
    for r in openai.requests:
        content = r["messages"][-1]["content"]
        out.append(content if isinstance(content, str) else str(content))
    return out


async def test_a_reply_is_plain_text_in_the_thread_with_the_subject_kept(
    hermes_home, fake_openai, dovecot, sink
):
    async with email_gateway(hermes_home, fake_openai, dovecot, sink) as h:
        first = h.deliver("Hello", "How are you?")
        answer = await h.wait_answer(first)
        assert answer["Subject"] == "Re: Hello"
        assert answer["In-Reply-To"] == first
        assert answer["References"] == first
        assert answer["To"] == ALICE and answer.rcpt_tos == [ALICE]
        assert answer["From"] == h.address and answer.mail_from == h.address
        assert answer["Auto-Submitted"] == "auto-replied"
        assert answer.message.get_content_type() == "text/plain"
        assert answer.user == h.address  # logged in with EMAIL_ADDRESS / EMAIL_PASSWORD
        assert answer.text == (
            "echo: [Subject: Hello]\n\nHow are you?\n\n"
            "On Fri, 15 Jan 2027 08:00:00 -0000, alice@example.org wrote:\n"
            "> How are you?\n"
        )
        ours = answer["Message-ID"]
        # Alice answers in the thread, quoting us: the quote is not sent to the model again.
        second = h.deliver(
            "Re: Hello",
            f"Fine, thanks.\n\nOn Fri, Hermes wrote:\n> {answer.text.splitlines()[0]}\n",
            in_reply_to=ours,
            references=f"{first} {ours}",
        )
        again = await h.wait_answer(second)
        assert again["Subject"] == "Re: Hello"
        assert again["In-Reply-To"] == second
        assert again["References"] == f"{first} {ours} {second}"
        assert again.text.startswith("echo: Fine, thanks.\n\n")
        assert asked(fake_openai)[-1] == "Fine, thanks."
        assert len(h.email_sessions()) == 1
        # The model saw the whole thread: one session.
        assert len(fake_openai.requests[-1]["messages"]) >= 4


async def test_a_new_subject_is_a_new_session_and_a_bare_in_reply_to_stays_in_its_thread(
    hermes_home, fake_openai, dovecot, sink
):
    # Addresses are allowed whatever their case.
    async with email_gateway(
        hermes_home, fake_openai, dovecot, sink, EMAIL_ALLOWED_USERS="Alice@Example.ORG"
    ) as h:
        one = h.deliver("Trip to Rome", "Flights?")
        ours = (await h.wait_answer(one))["Message-ID"]
        two = h.deliver("Dinner", "Where shall we eat?")
        await h.wait_answer(two)
        assert len(h.email_sessions()) == 2
        # A client that sends only In-Reply-To (no References) still lands in its thread.
        three = h.deliver("Re: Trip to Rome", "And hotels?", in_reply_to=ours)
        third = await h.wait_answer(three)
        assert third["Subject"] == "Re: Trip to Rome"
        assert len(h.email_sessions()) == 2
        # One that trimmed References down to our answer alone, too.
        four = h.deliver("Re: Trip to Rome", "And trains?", references=third["Message-ID"])
        await h.wait_answer(four)
        assert len(h.email_sessions()) == 2
        rome = [k for k in h.email_sessions() if len(h.runner.sessions[k].history) >= 6]
        assert len(rome) == 1
        assert asked(fake_openai) == [
            "[Subject: Trip to Rome]\n\nFlights?",
            "[Subject: Dinner]\n\nWhere shall we eat?",
            "And hotels?",
            "And trains?",
        ]


async def test_an_unlisted_or_forged_sender_never_reaches_the_agent(
    hermes_home, fake_openai, dovecot, sink
):
    async with email_gateway(hermes_home, fake_openai, dovecot, sink) as h:
        since = len(h.recorder.events)
        stranger = h.deliver("Hi", "Let me in", sender=MALLORY)
        denied = await h.recorder.event(AccessDenied, since=since)
        assert denied.platform == "email"
        # From: says Alice, but no server vouched for it (no Authentication-Results pass).
        since = len(h.recorder.events)
        forged = h.deliver("Hi", "It's me, Alice", authenticated=False)
        await h.recorder.event(AccessDenied, since=since)
        await h.dovecot_seen(stranger, forged)
        assert fake_openai.requests == []
        assert h.sink.mails == []
        # Alice herself is answered.
        real = h.deliver("Hi", "Really me")
        await h.wait_answer(real)
        assert len(h.sink.mails) == 1


async def test_auto_replies_bounces_lists_and_our_own_mail_are_never_answered(
    hermes_home, fake_openai, dovecot, sink
):
    async with email_gateway(hermes_home, fake_openai, dovecot, sink) as h:
        loops = {
            "auto": h.deliver("Out of office", "away", headers={"Auto-Submitted": "auto-replied"}),
            "x-autoreply": h.deliver("Re: hi", "away", headers={"X-Autoreply": "yes"}),
            "bulk": h.deliver("News", "buy", headers={"Precedence": "bulk"}),
            "junk": h.deliver("News", "buy", headers={"Precedence": "junk"}),
            "daemon": h.deliver("Undeliverable", "failed", sender="MAILER-DAEMON@example.org"),
            "null-path": h.deliver("Failure", "failed", headers={"Return-Path": "<>"}),
            "list-id": h.deliver("[dev] x", "hi all", headers={"List-Id": "<dev.example.org>"}),
            "unsubscribe": h.deliver(
                "Digest", "hi", headers={"List-Unsubscribe": "<mailto:u@example.org>"}
            ),
            "ourselves": h.deliver("Loop", "me", sender=h.address),
        }
        report = h.deliver_report()
        normal = h.deliver("Question", "Is this answered?")
        await h.wait_answer(normal)
        assert len(h.sink.mails) == 1
        assert asked(fake_openai) == ["[Subject: Question]\n\nIs this answered?"]
        reasons = dict(h.adapter.ignored)
        assert set(reasons) == set(loops.values()) | {report}
        assert reasons[loops["auto"]] == "Auto-Submitted: auto-replied"
        assert reasons[loops["daemon"]] == "bounce (mailer daemon)"
        assert reasons[report] == "bounce (delivery report)"
        assert reasons[loops["null-path"]] == "bounce (null return path)"
        assert reasons[loops["ourselves"]] == "our own mail"
        # Each one is marked read: it is not looked at again.
        await h.dovecot_seen(*reasons)


async def test_attachments_reach_the_model_and_workspace_files_go_back_attached(
    hermes_home, fake_openai, dovecot, sink
):
    async with email_gateway(hermes_home, fake_openai, dovecot, sink) as h:
        outside = hermes_home / ".env"
        outside.write_text("OPENAI_API_KEY=do-not-send\n")

        def answer(body: dict) -> ScriptedReply:
            key = h.email_sessions()[0]
            workspace = workspace_for(hermes_home, "email", key)
            workspace.mkdir(parents=True, exist_ok=True)
            (workspace / "summary.txt").write_text("the summary\n")
            return ScriptedReply(
                text=f"Here it is.\nMEDIA:{workspace / 'summary.txt'}\nMEDIA:{outside}"
            )

        fake_openai.default = answer
        mid = h.deliver(
            "Notes",
            "Please summarise the attached.",
            attachments=[("notes.txt", "text/plain", b"line one\nline two\n")],
        )
        reply = await h.wait_answer(mid)
        content = fake_openai.requests[0]["messages"][-1]["content"]
        text = content if isinstance(content, str) else str(content)
        saved = [p for p in (hermes_home / "media").rglob("*notes*")]
        assert len(saved) == 1 and saved[0].read_bytes() == b"line one\nline two\n"
        assert str(saved[0]) in text
        assert reply.attachments() == [("summary.txt", b"the summary\n")]
        assert reply.text.startswith("Here it is.\n")
        assert f"MEDIA:{outside}" in reply.text  # refused: stays text, never attached
        assert "do-not-send" not in reply.message.as_string()


async def test_a_huge_mail_is_not_fetched(hermes_home, fake_openai, dovecot, sink):
    def small(config):
        config.platforms.email.max_attachment_bytes = 1000  # mail above ~66 KB is left alone

    async with email_gateway(hermes_home, fake_openai, dovecot, sink, configure=small) as h:
        big = h.deliver(
            "Big",
            "see attached",
            attachments=[("big.bin", "application/octet-stream", b"x" * 200_000)],
        )
        normal = h.deliver("Small", "just text")
        await h.wait_answer(normal)
        assert [m["In-Reply-To"] for m in h.sink.mails] == [normal]
        assert [r for _, r in h.adapter.ignored] == ["too large"]
        await h.dovecot_seen(big)
        assert not list((hermes_home / "media").rglob("*big*"))


async def test_unread_mail_older_than_a_day_is_not_answered(
    hermes_home, fake_openai, dovecot, sink
):
    async with email_gateway(hermes_home, fake_openai, dovecot, sink) as h:
        old = h.deliver("Last month", "still there?", received=time.time() - 3 * 86400)
        recent = h.deliver("Yesterday morning", "hello?", received=time.time() - 20 * 3600)
        fresh = h.deliver("Now", "hi")
        await h.wait_answer(fresh)
        await h.wait_answer(recent)
        assert len(h.sink.mails) == 2
        assert [r for _, r in h.adapter.ignored] == ["older than 24 h"]
        await h.dovecot_seen(old)


async def test_deliveries_to_the_home_address_are_new_mails(
    hermes_home, fake_openai, dovecot, sink
):
    async with email_gateway(
        hermes_home, fake_openai, dovecot, sink, EMAIL_HOME_ADDRESS=ALICE
    ) as h:
        [outcome] = await h.runner.router.deliver("email", "Daily report: all well.")
        assert outcome.status == "sent", outcome
        [mail] = await h.sink.wait_count(1)
        assert mail["To"] == ALICE and mail["Subject"] == "Hermes Agent"
        assert mail["In-Reply-To"] == "" and mail.text == "Daily report: all well.\n"
