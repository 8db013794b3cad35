"""The email connection: IDLE, the polling fallback, a dropped server, bad credentials."""

# ruff: noqa: F811 (the servers are fixtures imported from the harness)

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import pytest

from tests.integration.email_harness import (  # noqa: F401 (fixtures)
    dovecot,
    dovecot_server,
    email_gateway,
    need_dovecot,
    sink,
)
from tests.integration.email_servers import Dovecot, SmtpSink, self_signed


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    """A Dovecot of this test alone (it is stopped and started again)."""
    need_dovecot()
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot_without_idle() -> Iterator[Dovecot]:
    need_dovecot()
    server = Dovecot(idle=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_idle_wakes_the_adapter_as_soon_as_mail_arrives(
    hermes_home, fake_openai, dovecot, sink
):
    # Polling every 10 minutes: only IDLE can answer within the wait below.
    async with email_gateway(
        hermes_home, fake_openai, dovecot, sink, EMAIL_POLL_INTERVAL="600"
    ) as h:
        assert h.adapter.mode == "IDLE"
        assert h.states()[-1][:2] == ("connected", f"{h.address} (IDLE)")
        for n in range(3):
            mid = h.deliver(f"Ping {n}", "are you there?")
            await h.wait_answer(mid, timeout=5)
        assert len(h.sink.mails) == 3


async def test_without_idle_the_inbox_is_polled(
    hermes_home, fake_openai, dovecot_without_idle, sink
):
    async with email_gateway(
        hermes_home, fake_openai, dovecot_without_idle, sink, EMAIL_POLL_INTERVAL="0.2"
    ) as h:
        assert h.adapter.mode == "polling"
        first = h.deliver("Polled", "one")
        await h.wait_answer(first)
        second = h.deliver("Polled again", "two")
        await h.wait_answer(second)
        assert [m["In-Reply-To"] for m in h.sink.mails] == [first, second]


async def test_a_dropped_server_is_reconnected_without_duplicate_or_lost_answers(
    hermes_home, fake_openai, own_dovecot, sink
):
    async with email_gateway(hermes_home, fake_openai, own_dovecot, sink) as h:
        before = h.deliver("Before", "before the drop")
        await h.wait_answer(before)
        await asyncio.to_thread(own_dovecot.stop)
        await h.wait_state("reconnecting")
        # Mail delivered while the server is down is taken after the reconnect.
        away = [h.deliver(f"Away {n}", f"while away {n}") for n in range(2)]
        await asyncio.to_thread(own_dovecot.start)
        await h.wait_state("connected")
        for mid in away:
            await h.wait_answer(mid)
        after = h.deliver("After", "after the drop")
        await h.wait_answer(after)
        replied = [m["In-Reply-To"] for m in h.sink.mails]
        assert sorted(replied) == sorted([before, *away, after])
        assert len(fake_openai.requests) == 4
        retries = [s for s in h.states() if s[0] == "reconnecting"]
        assert retries and any(s[2] for s in retries)


async def test_a_wrong_password_is_one_clear_failure_naming_the_variable(
    hermes_home, fake_openai, own_dovecot, sink
):
    # Its own server: Dovecot slows down the next logins from an address that failed one.
    async with email_gateway(
        hermes_home,
        fake_openai,
        own_dovecot,
        sink,
        EMAIL_PASSWORD="not-the-password",
        wait_connected=False,
    ) as h:
        await h.wait_state("failed")
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "EMAIL_PASSWORD" in failed[0][1] and "IMAP" in failed[0][1]
        assert "not-the-password" not in failed[0][1]
        assert not [s for s in h.states() if s[0] == "reconnecting"]
        assert sink.logins == []


async def test_an_smtp_server_refusing_the_password_fails_at_start(
    hermes_home, fake_openai, dovecot
):
    async with SmtpSink(password="another-password") as strict:
        async with email_gateway(
            hermes_home, fake_openai, dovecot, strict, wait_connected=False
        ) as h:
            await h.wait_state("failed")
            [failed] = [s for s in h.states() if s[0] == "failed"]
            assert "EMAIL_PASSWORD" in failed[1] and "SMTP" in failed[1]
            assert strict.logins and not any(ok for _, ok in strict.logins)


async def test_a_missing_host_names_the_variable(hermes_home, fake_openai, dovecot, sink):
    async with email_gateway(
        hermes_home, fake_openai, dovecot, sink, EMAIL_IMAP_HOST="", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        [failed] = [s for s in h.states() if s[0] == "failed"]
        assert failed[1] == "EMAIL_IMAP_HOST is not set"


async def test_unencrypted_mail_to_another_machine_is_refused(
    hermes_home, fake_openai, dovecot, sink
):
    async with email_gateway(
        hermes_home,
        fake_openai,
        dovecot,
        sink,
        EMAIL_SMTP_HOST="smtp.example.org",
        wait_connected=False,
    ) as h:
        await h.wait_state("failed")
        [failed] = [s for s in h.states() if s[0] == "failed"]
        assert "EMAIL_SMTP_HOST" in failed[1] and "unencrypted" in failed[1]


async def test_a_full_disk_leaves_mail_unread_then_answers_each_once(
    tmp_path, fake_openai, dovecot, sink
):
    from tests.integration.test_disk_full import fill, small_tmpfs

    with small_tmpfs(tmp_path / "full-home") as home:
        async with email_gateway(
            home, fake_openai, dovecot, sink, EMAIL_POLL_INTERVAL="0.5", HERMES_BUSY_MODE="queue"
        ) as h:
            before = h.deliver("Before", "before")
            await h.wait_answer(before)
            filler = fill(home)
            waiting = [h.deliver(f"Full {n}", f"while full {n}") for n in range(3)]
            await h.recorder.wait_for(
                lambda: any("cannot store" in s[1] for s in h.states()), timeout=10
            )
            seen = h.dovecot.seen(h.address)
            assert not any(seen.get(mid) for mid in waiting)  # nothing marked read unstored
            assert len(fake_openai.requests) == 1
            filler.unlink()
            for mid in waiting:
                await h.wait_answer(mid, timeout=20)
            await h.wait_state("connected")
            assert sorted(m["In-Reply-To"] for m in h.sink.mails) == sorted([before, *waiting])
            await h.dovecot_seen(*waiting)


async def test_imap_over_tls_and_smtp_starttls_by_default(
    hermes_home, fake_openai, tmp_path, monkeypatch
):
    need_dovecot()
    folder = tmp_path / "certs"
    folder.mkdir()
    cert, key = self_signed(folder)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # our test CA, trusted as a real one is
    server = Dovecot(tls=(cert, key))
    server.start()
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        async with SmtpSink(tls=context) as secure_sink:

            def with_tls(config):
                config.platforms.email.tls = True  # the default; the harness turns it off

            async with email_gateway(
                hermes_home,
                fake_openai,
                server,
                secure_sink,
                configure=with_tls,
                EMAIL_IMAP_PORT=str(server.tls_port),
            ) as h:
                mid = h.deliver("Secret", "over TLS?")
                answer = await h.wait_answer(mid)
                assert answer.encrypted and answer.user == h.address
                assert answer.text.startswith("echo: [Subject: Secret]\n\nover TLS?")
    finally:
        server.close()


async def test_an_untrusted_certificate_is_refused(hermes_home, fake_openai, tmp_path, sink):
    need_dovecot()
    folder = tmp_path / "certs"
    folder.mkdir()
    server = Dovecot(tls=self_signed(folder))  # nobody trusts this one
    server.start()
    try:

        def with_tls(config):
            config.platforms.email.tls = True

        async with email_gateway(
            hermes_home,
            fake_openai,
            server,
            sink,
            configure=with_tls,
            EMAIL_IMAP_PORT=str(server.tls_port),
            wait_connected=False,
        ) as h:
            await h.recorder.wait_for(
                lambda: any(s[0] == "reconnecting" and "TLS" in s[1] for s in h.states())
            )
            assert not [s for s in h.states() if s[0] == "connected"]
    finally:
        server.close()
