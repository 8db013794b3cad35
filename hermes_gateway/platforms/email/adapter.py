"""Email as a gateway platform: IMAP in (IDLE, else polling), SMTP out, inside our loop.

Its parts:

* :mod:`.imap`: one IMAP connection (aioimaplib) with deadlines and drop detection;
* :mod:`.inbound`: parsing, loop protection, sender authentication, thread roots;
* :mod:`.compose`: the answer mail (a proper reply, plain text, attachments);
* :mod:`.transport`: SMTP (aiosmtplib), errors mapped to delivery errors;
* :mod:`.threads`: thread contexts and our sent ids, kept in the store's kv.

Connection. The shared :class:`~hermes_gateway.platforms.connection.ConnectionLoop` runs
one session at a time: connect, log in (a refused login is one failure naming
EMAIL_PASSWORD; so is a refused SMTP login, checked once at start), select INBOX, then
take every unseen mail and wait for more: in IDLE where the server offers it (a new mail
wakes us at once), else every EMAIL_POLL_INTERVAL seconds. A dropped connection is seen
at once and retried after the shared backoff; the Platforms pane shows it.

Durability. A mail is fetched with ``BODY.PEEK[]`` (not marking it read), handed to the
gateway, and marked ``\\Seen`` only once ``host.receive`` returned (it is stored). A kill
between the two leaves it unseen: it is fetched again at the next start and the inbox,
which knows its Message-ID in its session, drops the repeat. So nothing is lost and
nothing is answered twice. A store that cannot take it (IntakeError) leaves it unseen and
the next look is after a pause.

Who is answered. Mail that must never be answered (auto-replies, bounces, mailing lists,
our own) is marked seen and dropped here, before the gateway: that is the loop protection.
Every other mail goes to the gateway, whose access policy decides; the sender's address
counts only when the receiving server's Authentication-Results vouch for its domain
(unless EMAIL_TRUST_FROM_HEADER), since anyone can write any From:. No pairing codes are
mailed to strangers (a reply to a forged From: is backscatter). One answer per turn: mail
cannot be edited, so nothing streams.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections import deque
from pathlib import Path

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config
from hermes_gateway.delivery import DeliveryError
from hermes_gateway.delivery.media_turn import Refusal, extract_media, workspace_refusal
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, MessageEvent, SessionSource
from hermes_gateway.platforms.base import (
    FatalPlatformError,
    IntakeError,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.email.compose import (
    MAX_QUOTE_CHARS,
    MESSAGE_ID_PREFIX,
    ThreadContext,
    bare_subject,
    build_mail,
)
from hermes_gateway.platforms.email.imap import (
    FETCH_BATCH,
    ConnectionLost,
    ImapError,
    ImapMailbox,
    LoginRefused,
)
from hermes_gateway.platforms.email.inbound import (
    ParsedMail,
    ignore_reason,
    parse_mail,
    sender_authenticated,
    thread_key,
    thread_root,
)
from hermes_gateway.platforms.email.threads import ThreadBook
from hermes_gateway.platforms.email.transport import SmtpLoginRefused, SmtpSender

__all__ = ["EmailAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 30.0
"""How long start() waits for the first login before returning anyway (still connecting)."""
INTAKE_RETRY = 5.0
"""Seconds before mail the store could not take is tried again (at most; less when
EMAIL_POLL_INTERVAL is shorter)."""
MAX_OUTBOUND_BYTES = 20 * 1024 * 1024
"""Files attached to one answer at most (most servers refuse mail above 25 MB)."""
IGNORED_KEPT = 200


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class EmailAdapter(PlatformAdapter):
    """One mailbox: each thread of each sender is a session.

    Args:
        config: The gateway configuration (``config.platforms.email`` is used).
        policy: Who may talk; consulted here only before saving attachments (the runner
            makes the real decision).
    """

    name = "email"
    acknowledges_busy = False

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg = cfg = config.platforms.email
        self.policy = policy
        self.address = cfg.address.strip().lower()
        self.smtp = SmtpSender(
            cfg.smtp_host.strip(),
            cfg.smtp_port,
            tls=cfg.tls,
            user=cfg.address.strip(),
            password=cfg.password,
            timeout=cfg.timeout,
        )
        self.threads = ThreadBook(None, self.address)
        self.link = ConnectionLoop(
            self,
            "Email",
            Backoff(cfg.reconnect_initial, cfg.reconnect_cap, jitter=0.2, upward=True),
            describe=_describe,
        )
        self.mode = ""
        """``IDLE`` or ``polling`` once connected."""
        self.ignored: deque[tuple[str, str]] = deque(maxlen=IGNORED_KEPT)
        """(Message-ID, reason) of the latest mails dropped by the loop protection."""
        self.handed_in = 0
        """Mails handed to the gateway since start (for tests and the log)."""
        self._smtp_checked = False

    # --- lifecycle ----------------------------------------------------------------------

    def _settings_problem(self) -> str | None:
        cfg = self.cfg
        missing = [
            name
            for name, value in (
                ("EMAIL_ADDRESS", cfg.address),
                ("EMAIL_PASSWORD", cfg.password),
                ("EMAIL_IMAP_HOST", cfg.imap_host),
                ("EMAIL_SMTP_HOST", cfg.smtp_host),
            )
            if not value.strip()
        ]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            return f"{', '.join(missing)} {verb} not set"
        if "@" not in cfg.address:
            return f"EMAIL_ADDRESS must be a mail address, got {cfg.address!r}"
        if not cfg.tls:
            for var, host in (
                ("EMAIL_IMAP_HOST", cfg.imap_host),
                ("EMAIL_SMTP_HOST", cfg.smtp_host),
            ):
                if not _is_loopback(host):
                    return (
                        f"platforms.email.tls is off but {var} ({host}) is not this machine: "
                        "the password would cross the network unencrypted"
                    )
        return None

    async def start(self) -> None:
        problem = self._settings_problem()
        if problem is not None:
            raise FatalPlatformError(problem)
        self.threads = ThreadBook(self.host.store if self.bound else None, self.address)
        await self.link.start(self._session, wait=START_WAIT, waiting="waiting for the IMAP server")

    async def stop(self) -> None:
        await self.link.stop()
        self.link.set_state("stopped")

    async def _check_smtp(self) -> None:
        if self._smtp_checked:
            return
        try:
            await self.smtp.check_login()
        except SmtpLoginRefused as exc:
            raise FatalPlatformError(
                f"the SMTP server {self.cfg.smtp_host} refused EMAIL_ADDRESS/EMAIL_PASSWORD "
                f"({exc}); check EMAIL_PASSWORD"
            ) from exc
        except DeliveryError as exc:
            raise ConnectionLost(str(exc)) from exc
        self._smtp_checked = True

    async def _session(self) -> str:
        """Log in and take mail until the connection ends; the link backs off and retries."""
        cfg = self.cfg
        box = ImapMailbox(cfg.imap_host.strip(), cfg.imap_port, tls=cfg.tls, timeout=cfg.timeout)
        try:
            try:
                await box.open(cfg.address.strip(), cfg.password)
            except LoginRefused as exc:
                raise FatalPlatformError(
                    f"the IMAP server {cfg.imap_host} refused EMAIL_ADDRESS/EMAIL_PASSWORD "
                    f"({exc}); check EMAIL_PASSWORD"
                ) from exc
            await self._check_smtp()
            idle = cfg.idle and box.can_idle
            self.mode = "IDLE" if idle else "polling"
            detail = f"{self.address} ({self.mode})"
            self.link.connected(detail)
            retry = min(INTAKE_RETRY, cfg.poll_interval)
            while True:
                refused = await self._take_new(box)
                if refused is not None:
                    # Nothing lost: the mail stays unread on the server until it is stored.
                    self.link.set_state(
                        "reconnecting", f"cannot store incoming mail: {refused}", retry
                    )
                    await self._pause(box, retry)
                    continue
                if self.link.state != "connected":
                    self.link.connected(detail)
                if idle:
                    await box.idle(cfg.idle_refresh)
                else:
                    await self._pause(box, cfg.poll_interval)
        finally:
            await box.close()

    @staticmethod
    async def _pause(box: ImapMailbox, seconds: float) -> None:
        """Wait ``seconds``, or less if the connection drops (then raise)."""
        try:
            await asyncio.wait_for(box.lost.wait(), seconds)
        except TimeoutError:
            return
        raise ConnectionLost("the IMAP server closed the connection")

    # --- inbound ------------------------------------------------------------------------

    async def _take_new(self, box: ImapMailbox) -> IntakeError | None:
        """Hand every unseen mail to the gateway, oldest first, marking each seen after.

        Mail is fetched in batches; a batch's senders are handed in side by side (each
        sender's mails in their order), and only the mails the gateway took are marked seen.
        Searches again after a batch (mail that came meanwhile is taken before waiting).
        Returns the store's refusal of a mail (it stays unseen; try again later), if any."""
        while True:
            await box.noop()  # makes the server look at the mailbox now (IMAP's poll)
            uids = await box.unseen()
            if not uids:
                return None
            for start in range(0, len(uids), FETCH_BATCH):
                chunk = uids[start : start + FETCH_BATCH]
                skip = self._left_alone(await box.envelopes(chunk))
                mails = await box.fetch([uid for uid in chunk if uid not in skip])
                taken, refused, failure = await self._take_batch(chunk, mails)
                await box.mark_seen(taken)
                if failure is not None:
                    raise failure
                if refused is not None:
                    return refused

    def _left_alone(self, envelopes: dict[int, tuple[int, float | None]]) -> set[int]:
        """Mail not to fetch at all: too large, or older than ``max_age_hours`` (a mailbox
        full of old unread mail at the first start is not answered months late)."""
        skip: set[int] = set()
        oldest = time.time() - self.cfg.max_age_hours * 3600 if self.cfg.max_age_hours else None
        for uid, (size, arrived) in envelopes.items():
            reason = None
            if size > self._max_mail_bytes:
                reason = "too large"
            elif oldest is not None and arrived is not None and arrived < oldest:
                reason = f"older than {self.cfg.max_age_hours:g} h"
            if reason is not None:
                log.warning("mail UID %d (%d bytes) not answered: %s", uid, size, reason)
                self.ignored.append((f"uid:{uid}", reason))
                skip.add(uid)
        return skip

    @property
    def _max_mail_bytes(self) -> int:
        """Mail larger than this is not fetched: attachments at their limit, twice over
        (base64 grows them by a third) plus room for the text."""
        return 2 * self.cfg.max_attachment_bytes + 64 * 1024

    async def _take_batch(
        self, uids: list[int], raw: dict[int, bytes]
    ) -> tuple[list[int], IntakeError | None, BaseException | None]:
        """Hand one fetched batch in; returns the UIDs done with, whether the store refused
        one, and an unexpected failure (raised by the caller once the rest is marked seen)."""
        present = [uid for uid in uids if uid in raw]
        parsed = await asyncio.to_thread(lambda: [_parse(raw[uid]) for uid in present])
        by_sender: dict[str, list[tuple[int, ParsedMail]]] = {}
        taken = [uid for uid in uids if uid not in raw]  # gone meanwhile: nothing to take
        for uid, mail in zip(present, parsed, strict=True):
            if mail is None:
                self.ignored.append((f"uid:{uid}", "unreadable"))
                taken.append(uid)
                continue
            by_sender.setdefault(mail.from_addr, []).append((uid, mail))
        refused: IntakeError | None = None

        async def one_sender(items: list[tuple[int, ParsedMail]]) -> None:
            nonlocal refused
            for uid, mail in items:
                try:
                    await self._take(mail)
                except IntakeError as exc:
                    log.warning("the gateway could not store a mail; it stays unread: %s", exc)
                    refused = exc
                    return
                taken.append(uid)

        results = await asyncio.gather(
            *(one_sender(items) for items in by_sender.values()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        return sorted(taken), refused, failures[0] if failures else None

    async def _take(self, mail: ParsedMail) -> None:
        reason = ignore_reason(mail, self.address)
        if reason is not None:
            log.info("not answering mail %s: %s", mail.message_id, reason)
            self.ignored.append((mail.message_id, reason))
            return
        event = await self._event(mail)
        await self.dispatch(event)  # returns once stored: only then is the mail marked seen
        self.handed_in += 1

    async def _thread_of(self, mail: ParsedMail) -> str:
        """The thread key: the root's, or when the root named is one of our answers (a
        client that sent only ``In-Reply-To``, or trimmed ``References``), the thread that
        answer belongs to."""
        root = thread_root(mail)
        if root.startswith(f"<{MESSAGE_ID_PREFIX}."):  # a client that kept only our id
            ours = await self.threads.thread_of_ours(root)
            if ours:
                return ours
        return thread_key(root)

    async def _event(self, mail: ParsedMail) -> MessageEvent:
        thread = await self._thread_of(mail)
        verified, why = (
            (True, "trusted")
            if self.cfg.trust_from_header
            else sender_authenticated(mail, self.cfg.authserv_id)
        )
        user_id = mail.from_addr
        if not verified:
            log.info("the From: of mail %s is not authenticated: %s", mail.message_id, why)
            # Its own user and its own threads: where it is let in at all (allow-all), a
            # forged From: still cannot continue the real sender's conversations.
            user_id = f"unverified:{mail.from_addr}"
            thread = thread_key(f"unverified:{thread}")
        subject = mail.subject.strip()
        source = SessionSource(
            "email",
            mail.from_addr,
            "thread",
            thread,
            user_id,
            mail.from_name or mail.from_addr,
            bare_subject(subject) or mail.from_addr,  # the chat's name in the sessions pane
        )
        allowed = await self.policy.is_allowed(source)
        media: list[MediaRef] = []
        if allowed:
            await self.threads.save_context(
                mail.from_addr,
                thread,
                ThreadContext(
                    subject=subject,
                    parent_id=mail.message_id,
                    references=mail.references or ([mail.in_reply_to] if mail.in_reply_to else []),
                    parent_date=mail.date,
                    parent_from=mail.from_name or mail.from_addr,
                    quote=mail.body[: MAX_QUOTE_CHARS + 1],  # more is never quoted
                ),
            )
            media = await self._save_attachments(mail)
        text = mail.body.strip()
        starts_thread = not mail.references and not mail.in_reply_to
        if starts_thread and subject and not text.startswith("/"):
            text = f"[Subject: {subject}]\n\n{text}".strip()
        if not text and not media:
            text = "(empty email)"
        return MessageEvent(
            text=text,
            source=source,
            message_id=mail.message_id,
            reply_to_id=mail.in_reply_to or None,
            media=media,
        )

    async def _save_attachments(self, mail: ParsedMail) -> list[MediaRef]:
        """Save the files of an allowed sender's mail under HERMES_HOME/media."""
        if self.cfg.skip_attachments:
            return []
        refs: list[MediaRef] = []
        for i, part in enumerate(mail.attachments):
            if len(part.data) > self.cfg.max_attachment_bytes:
                log.info("attachment %s of mail %s is too large", part.file_name, mail.message_id)
                continue
            refs.append(
                await save_media(
                    self.config.paths.media_dir,
                    part.data,
                    platform=self.name,
                    unique_id=f"{thread_key(mail.message_id)}-{i}",
                    file_name=part.file_name,
                    mime_type=part.mime_type,
                )
            )
        return refs

    # --- delivery -----------------------------------------------------------------------

    async def send(self, source: SessionSource, text: str) -> None:
        await self.send_mail(source, text, [])

    async def send_file(self, source: SessionSource, path: str | Path, caption: str = "") -> None:
        await self.send_mail(source, caption, [Path(path)])

    async def send_mail(self, source: SessionSource, text: str, paths: list[Path]) -> None:
        """One mail to the chat: the reply in its thread (a new mail when there is none)."""
        to = source.chat_id.strip()
        if "@" not in to or to.lower() == self.address:
            raise DeliveryError(f"not a mail address to answer: {to!r}")
        ctx = await self.threads.context(to, source.thread_id)
        files = await asyncio.to_thread(_read_files, paths)
        message = build_mail(
            sender=self.cfg.address.strip(),
            to=to,
            body=text,
            ctx=ctx,
            quote=self.cfg.quote_original,
            files=files,
        )
        message_id = str(message["Message-ID"])
        if ctx is not None and await self.threads.was_delivered(message_id):
            log.info("answer %s was already delivered before a restart; not sent again", message_id)
            return
        if source.thread_id:
            # Before sending: a reply to this mail may come back before we got here again.
            await self.threads.sent(message_id, source.thread_id)
        await self.smtp.send(message, to)
        if ctx is not None:
            await self.threads.delivered(message_id)

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        refusal = workspace_refusal(self.config.paths.home, self.name, source.session_key)
        return EmailTurn(self, source, refusal)


class EmailTurn:
    """One answer as one mail: nothing is sent until the turn ends (mail cannot be edited);
    ``MEDIA:/path`` lines naming files of the chat's workspace become attachments."""

    def __init__(self, adapter: EmailAdapter, source: SessionSource, refusal: Refusal) -> None:
        self._adapter, self._source, self._refusal = adapter, source, refusal

    def on_delta(self, text: str) -> None:
        pass

    def on_tool_started(self, name: str, preview: str) -> None:
        pass

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        pass

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        body, files = await extract_media(text, self._refusal)
        if error:
            body = f"{body}\n\n⚠ {error}" if body else f"⚠ {error}"
        elif interrupted:
            body = f"{body}\n\n(interrupted)" if body else "(interrupted)"
        if body or files:
            await self._adapter.send_mail(self._source, body, files)


def _parse(raw: bytes) -> ParsedMail | None:
    """A mail, or None when the parser gives up on it (it is then marked read, unanswered)."""
    try:
        return parse_mail(raw)
    except Exception:  # hostile or broken mail must not stop the inbox
        log.warning("an unreadable mail was left unanswered", exc_info=True)
        return None


def _describe_ssl(exc: ssl.SSLError) -> str:
    return (
        f"TLS with the mail server failed ({exc.reason or exc}); EMAIL_IMAP_PORT 993 and "
        "EMAIL_SMTP_PORT 465 are TLS, 587 STARTTLS (IMAP's STARTTLS on 143 is not supported)"
    )


def _read_files(paths: list[Path]) -> list[tuple[Path, bytes]]:
    out: list[tuple[Path, bytes]] = []
    total = 0
    for path in paths:
        try:
            size = path.stat().st_size
            if total + size > MAX_OUTBOUND_BYTES:
                log.warning("not attaching %s: the answer would exceed the size limit", path.name)
                continue
            out.append((path, path.read_bytes()))
            total += size
        except OSError as exc:
            log.warning("cannot attach %s: %s", path.name, exc)
    return out


def _describe(exc: BaseException) -> str:
    """Why an email connection ended, in the words the Platforms pane shows."""
    if isinstance(exc, ImapError):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        return _describe_ssl(exc)
    if isinstance(exc, OSError | TimeoutError):
        return f"cannot reach the IMAP server: {exc or type(exc).__name__}"
    return str(exc) or type(exc).__name__
