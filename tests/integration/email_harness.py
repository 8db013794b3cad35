"""A gateway with the email adapter on a real Dovecot and a real SMTP sink, and helpers.

:func:`email_gateway` runs the real :class:`~hermes_gateway.gateway.Gateway`, built from
config as in production (the registry finds the email plugin from EMAIL_ADDRESS), against
:class:`~tests.integration.email_servers.Dovecot` (IMAP) and
:class:`~tests.integration.email_servers.SmtpSink` (SMTP), and the scripted model.

Fixtures: ``dovecot`` (one server for the session; every test gets its own mailbox user),
``sink`` (per test). Both skip, with the reason, only when Dovecot is not installed (``.ci/run``
installs ``dovecot-imapd`` when it is missing).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.email.adapter import EmailAdapter
from hermes_gateway.runner import GatewayRunner
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder
from tests.integration._platform_harness import started_gateway
from tests.integration.email_servers import (
    PASSWORD,
    Dovecot,
    SentMail,
    SmtpSink,
    dovecot_binary,
    make_mail,
)

ALICE = "alice@example.org"
BOB = "bob@example.org"
MALLORY = "mallory@evil.example"
NO_DOVECOT = (
    "Dovecot is not installed and could not be installed here (apt-get install "
    "dovecot-imapd; .ci/run does it when it can)"
)
_boxes = itertools.count(1)


def need_dovecot() -> None:
    if dovecot_binary() is None:
        pytest.skip(NO_DOVECOT)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    need_dovecot()
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    if dovecot_server.proc is None or dovecot_server.proc.poll() is not None:
        dovecot_server.start()  # a test stopped it and failed before starting it again
    return dovecot_server


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


@dataclass
class Harness:
    dovecot: Dovecot
    sink: SmtpSink
    gateway: Gateway
    runner: GatewayRunner
    adapter: EmailAdapter
    recorder: Recorder
    address: str
    sent_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def deliver(
        self,
        subject: str,
        body: str,
        *,
        sender: str = ALICE,
        message_id: str | None = None,
        **kw: Any,
    ) -> str:
        """Deliver one mail to the agent's INBOX; returns its Message-ID."""
        mid = message_id or f"<m{next(self.sent_ids)}.{next(_boxes)}@example.org>"
        received = kw.pop("received", None)
        self.dovecot.deliver(
            self.address,
            make_mail(sender, self.address, subject, body, message_id=mid, **kw),
            received=received,
        )
        return mid

    def deliver_report(self) -> str:
        """A delivery status notification (multipart/report) from an ordinary address."""
        mid = f"<dsn{next(self.sent_ids)}.{next(_boxes)}@example.org>"
        msg = EmailMessage()
        msg["Authentication-Results"] = "mx.example.org; dmarc=pass header.from=example.org"
        msg["From"] = ALICE
        msg["To"] = self.address
        msg["Subject"] = "Delivery Status Notification (Failure)"
        msg["Message-ID"] = mid
        msg.set_content("Your message could not be delivered.")
        msg.add_attachment(
            "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; x@example.org\n"
            "Action: failed\nStatus: 5.1.1\n",
            subtype="delivery-status",
        )
        msg.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')
        self.dovecot.deliver(self.address, msg.as_bytes())
        return mid

    async def dovecot_seen(self, *message_ids: str, timeout: float = 10.0) -> None:
        """Wait until Dovecot has each of these mails flagged \\Seen."""
        await self.recorder.wait_for(
            lambda: all(self.dovecot.seen(self.address).get(m) for m in message_ids), timeout
        )

    def answers_to(self, message_id: str) -> list[SentMail]:
        return [m for m in self.sink.mails if m["In-Reply-To"] == message_id]

    async def wait_answer(self, message_id: str, timeout: float = 10.0) -> SentMail:
        await self.sink.wait_for(lambda: bool(self.sink.replies[message_id]), timeout)
        await self.runner.wait_idle(timeout)
        return self.answers_to(message_id)[0]

    def email_sessions(self) -> list[str]:
        return sorted(k for k in self.runner.sessions if k.startswith("email:"))

    def states(self) -> list[tuple[str, str, float | None]]:
        return [
            (e.state, e.detail, e.retry_in)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "email"
        ]

    async def wait_state(self, state: str, timeout: float = 10.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] == state, timeout
        )


def new_mailbox() -> str:
    return f"agent{next(_boxes)}@example.org"


def email_env(address: str, dovecot: Dovecot, sink: SmtpSink, **env: str) -> dict[str, str]:
    """The EMAIL_* variables as a Hermes Agent user writes them."""
    return {
        "EMAIL_ADDRESS": address,
        "EMAIL_PASSWORD": PASSWORD,
        "EMAIL_IMAP_HOST": "127.0.0.1",
        "EMAIL_IMAP_PORT": str(dovecot.port),
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(sink.port),
        "EMAIL_ALLOWED_USERS": ALICE,
        "EMAIL_POLL_INTERVAL": "30",
        **env,
    }


def email_config(
    home: Any, openai: FakeOpenAI, address: str, dovecot: Dovecot, sink: SmtpSink, **env: str
) -> Config:
    config = make_config(home, openai, **email_env(address, dovecot, sink, **env))
    section = config.platforms.email
    section.tls = False  # the servers are on 127.0.0.1
    section.reconnect_initial = 0.05
    section.reconnect_cap = 0.3
    section.timeout = 5.0
    return config


@contextlib.asynccontextmanager
async def email_gateway(
    home: Any,
    openai: FakeOpenAI,
    dovecot: Dovecot,
    sink: SmtpSink,
    *,
    address: str | None = None,
    configure: Callable[[Config], None] | None = None,
    wait_connected: bool = True,
    **env: str,
) -> AsyncIterator[Harness]:
    """The whole gateway with email enabled by config, on a fresh mailbox."""
    address = address or new_mailbox()
    dovecot.maildir(address)
    config = email_config(home, openai, address, dovecot, sink, **env)
    async with started_gateway(config, "email", EmailAdapter, configure) as up:
        harness = Harness(dovecot, sink, up.gateway, up.runner, up.adapter, up.recorder, address)
        if wait_connected:
            await harness.wait_state("connected")
        yield harness
