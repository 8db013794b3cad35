"""Real mail servers on 127.0.0.1 for the email tests and bench: Dovecot and an SMTP sink.

* :class:`Dovecot`: Debian's ``dovecot-imapd`` run unprivileged-port with its own config
  (``dovecot -F -c <conf>``): plaintext IMAP on loopback, any user with the password
  :data:`PASSWORD` (a static passdb), each user's mail in a Maildir under a temp dir. Test
  mail is delivered straight into the Maildir (``new/``), as a local delivery agent does,
  so it can arrive while the server is down too. ``idle=False`` removes IDLE from the
  advertised capabilities (the polling fallback).
* :class:`SmtpSink`: aiosmtpd in the caller's event loop, AUTH required (LOGIN/PLAIN
  without TLS, loopback only), every accepted mail kept as parsed
  :class:`~email.message.EmailMessage` with its envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import grp
import ipaddress
import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "PASSWORD",
    "Dovecot",
    "SentMail",
    "SmtpSink",
    "dovecot_binary",
    "make_mail",
]

PASSWORD = "secret"
_counter = itertools.count()


def dovecot_binary() -> str | None:
    """The dovecot executable, or None when the package is not installed."""
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None
    )


def _die_with_parent() -> None:
    """Linux: the server is killed when the test process dies (even by kill -9)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    """One Dovecot instance with its own config, state and Maildirs under ``root``."""

    def __init__(
        self, *, idle: bool = True, root: Path | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed")
        self.binary = binary
        # Not under pytest's 0700 tmp dirs: Dovecot's login user must reach its sockets.
        self.root = root or Path(tempfile.mkdtemp(prefix="hermes-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.tls = tls
        """(certificate, key) PEM files: IMAP over TLS on :attr:`tls_port` too."""
        self.tls_port = free_port() if tls else 0
        self.idle = idle
        self.mail = self.root / "mail"
        self.mail.mkdir(exist_ok=True)
        self.conf = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._uid, self._gid = self._mail_owner()
        os.chown(self.mail, self._uid, self._gid)
        self._write_config()

    @staticmethod
    def _mail_owner() -> tuple[int, int]:
        """Dovecot refuses uid 0 for mail: as root, mail belongs to its ``dovecot`` user."""
        if os.getuid() != 0:
            return os.getuid(), os.getgid()
        entry = pwd.getpwnam("dovecot")
        return entry.pw_uid, entry.pw_gid

    def _write_config(self) -> None:
        root = os.getuid() == 0
        me = pwd.getpwuid(os.getuid()).pw_name
        internal = "dovecot" if root else me
        login = "dovenull" if root else me
        # Debian's package creates the dovecot user and group; unprivileged, our own.
        group = "dovecot" if root else grp.getgrgid(os.getgid()).gr_name
        caps = "" if self.idle else "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE\n"
        if self.tls:
            cert, key = self.tls
            ssl_conf = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
        else:
            ssl_conf = "ssl = no\n"
        self.conf.write_text(
            f"""base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = hermes-test-{self.port}
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
{ssl_conf}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{self.mail}/%u
first_valid_uid = 0
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
mail_max_userip_connections = 100
{caps}passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={self._uid} gid={self._gid} home={self.mail}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""
        )

    # --- process ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Run ``dovecot -F`` and wait until it greets on its port."""
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}\n{self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.settimeout(2)
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"dovecot did not greet on {self.port}\n{self._log_tail()}")

    def stop(self) -> None:
        """Kill it, children and all (every connection ends at once); the Maildirs stay."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-15:])
        except OSError:
            return ""

    # --- mail ---------------------------------------------------------------------------

    def maildir(self, user: str) -> Path:
        box = self.mail / user
        for sub in ("new", "cur", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
            os.chown(box / sub, self._uid, self._gid)
        os.chown(box, self._uid, self._gid)
        return box

    def deliver(self, user: str, raw: bytes, *, received: float | None = None) -> None:
        """Put one mail into ``user``'s INBOX as a delivery agent does (tmp/, then new/);
        ``received`` (epoch seconds) backdates its arrival (Dovecot's INTERNALDATE)."""
        box = self.maildir(user)
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(_counter)}.hermes-test"
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self._uid, self._gid)
        if received is not None:
            os.utime(tmp, (received, received))
        os.rename(tmp, box / "new" / name)

    def seen(self, user: str) -> dict[str, bool]:
        """Message-ID -> whether the mail is flagged \\Seen (from the Maildir file names)."""
        box = self.mail / user
        out: dict[str, bool] = {}
        parser = BytesParser(policy=policy.default)
        for sub in ("new", "cur"):
            folder = box / sub
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    msg = parser.parsebytes(path.read_bytes(), headersonly=True)
                except OSError:
                    continue  # renamed by Dovecot meanwhile: the next look finds it
                flags = path.name.partition(":2,")[2]
                out[str(msg.get("Message-ID", "")).strip()] = sub == "cur" and "S" in flags
        return out


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files in ``folder``."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    folder.chmod(0o755)
    cert_path.chmod(0o644)
    key_path.chmod(0o644)  # read by Dovecot's processes; a throwaway test key
    return cert_path, key_path


def make_mail(
    sender: str,
    to: str,
    subject: str,
    body: str,
    *,
    message_id: str,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    authenticated: bool = True,
) -> bytes:
    """A mail as a client sends it, with the receiving server's verdict on top."""
    msg = EmailMessage()
    if authenticated:
        domain = sender.rpartition("@")[2].rstrip(">")
        msg["Authentication-Results"] = f"mx.example.org; dmarc=pass header.from={domain}"
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(1_800_000_000, localtime=False)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for name, mime, data in attachments:
        major, _, minor = mime.partition("/")
        msg.add_attachment(data, maintype=major, subtype=minor, filename=name)
    return msg.as_bytes()


@dataclass
class SentMail:
    """One mail the sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    user: str
    encrypted: bool = False
    """Whether it came over STARTTLS."""

    def __getitem__(self, header: str) -> str:
        value = self.message.get(header)
        return "" if value is None else str(value)

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        text = "" if part is None else str(part.get_content())  # type: ignore[attr-defined]
        return text.replace("\r\n", "\n")

    def attachments(self) -> list[tuple[str, bytes]]:
        return [
            (str(p.get_filename()), bytes(p.get_payload(decode=True)))
            for p in self.message.iter_attachments()
        ]


class SmtpSink:
    """aiosmtpd on 127.0.0.1 that keeps what it is given (AUTH required)."""

    def __init__(self, password: str = PASSWORD, tls: ssl.SSLContext | None = None) -> None:
        self.password = password
        self.tls = tls
        """With a context: STARTTLS required before anything else (AUTH included)."""
        self.mails: list[SentMail] = []
        self.replies: Counter[str] = Counter()
        """How many accepted mails answer each Message-ID (their In-Reply-To)."""
        self.logins: list[tuple[str, bool]] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # AUTH without TLS on purpose (loopback only); aiosmtpd warns per connection.
            warnings.simplefilter("ignore")
            return SMTP(
                self,
                hostname="sink.example.org",
                auth_required=True,
                auth_require_tls=self.tls is not None,
                authenticator=self._authenticate,
                tls_context=self.tls,
                require_starttls=self.tls is not None,
            )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode()
        ok = data.password.decode() == self.password
        self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        self.mails.append(
            SentMail(
                str(envelope.mail_from),
                [str(r) for r in envelope.rcpt_tos],
                message,
                str(session.auth_data or ""),
                session.ssl is not None,
            )
        )
        self.replies[str(message.get("In-Reply-To", "")).strip()] += 1
        self._changed.set()
        return "250 OK"

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"the SMTP sink has {len(self.mails)} mails")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    async def wait_count(self, count: int, timeout: float = 10.0) -> list[SentMail]:
        await self.wait_for(lambda: len(self.mails) >= count, timeout)
        return list(self.mails)
