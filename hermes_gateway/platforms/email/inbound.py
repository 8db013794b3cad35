"""Reading one incoming mail: who sent it, which thread it belongs to, whether to answer it.

Pure functions over the stdlib's :mod:`email` parser (no I/O), so every rule can be tested
on raw bytes:

* :func:`parse_mail` turns the raw RFC 5322 bytes into a :class:`ParsedMail` (plain-text
  body without the quoted history, attachments, threading headers);
* :func:`ignore_reason` is the loop protection: mail that must never be answered
  (auto-replies, bounces, mailing lists, our own mail) gets a reason;
* :func:`sender_authenticated` reads the receiving server's ``Authentication-Results``
  (a From: header alone proves nothing: anyone can write any address there);
* :func:`thread_root` names the conversation: the first Message-ID of ``References``
  (RFC 5322 keeps the root first), else ``In-Reply-To``, else the mail's own id, so a new
  subject without references is a new session and every reply in a thread is the same one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr

from hermes_gateway.platforms.email.compose import MESSAGE_ID_PREFIX

__all__ = [
    "Attachment",
    "ParsedMail",
    "ignore_reason",
    "message_ids",
    "parse_mail",
    "sender_authenticated",
    "strip_quoted",
    "thread_key",
    "thread_root",
]

MAX_BODY_CHARS = 100_000
"""A longer body is cut (a chat turn has no use for a mailbox dump)."""

_ID_RE = re.compile(r"<[^<>\s]+>")
_AUTH_METHOD_RE = re.compile(r"\b(dmarc|dkim|spf)\s*=\s*([a-z]+)", re.IGNORECASE)
_AUTH_PROP_RE = re.compile(
    r"\b(header\.from|header\.d|smtp\.mailfrom|smtp\.from)\s*=\s*([^\s;]+)", re.IGNORECASE
)
_BOUNCE_LOCALS = frozenset({"mailer-daemon", "postmaster"})
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_ATTRIBUTION_RE = re.compile(r"^\s*(On\s.+wrote:|.+\s(schrieb|a écrit|escribió)\s?.*:)\s*$")
_ORIGINAL_RE = re.compile(r"^\s*-{2,}\s*(Original Message|Forwarded message)\s*-{2,}\s*$", re.I)


@dataclass(frozen=True)
class Attachment:
    """One file carried by a mail."""

    file_name: str
    mime_type: str
    data: bytes


@dataclass
class ParsedMail:
    """What the adapter needs of one incoming mail."""

    message: Message
    message_id: str
    """The ``Message-ID`` (with its angle brackets), or a digest of the raw mail without one."""
    from_addr: str
    """The sender's address in lower case ('' when there is none)."""
    from_name: str
    subject: str
    in_reply_to: str
    references: list[str]
    date: str
    body: str
    """The plain text, without the quoted history of earlier mails."""
    attachments: list[Attachment] = field(default_factory=list)


def message_ids(value: str | None) -> list[str]:
    """The ``<id>`` tokens of a ``References`` / ``In-Reply-To`` header, in order."""
    return _ID_RE.findall(str(value or ""))


def _header(msg: Message, name: str) -> str:
    """A header's decoded text on one line ('' when absent)."""
    try:
        value = msg.get(name)
    except Exception:  # the stdlib's header parser fails on some hostile input
        value = _raw(msg, name)
    if value is None:
        return ""
    return " ".join(str(value).split())


def _text_of(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, ValueError, AssertionError):
        content = None
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _strip_html(html: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    for entity, char in (("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    return bool(part.get_filename()) and part.get_content_maintype() != "text"


def _body_and_files(msg: Message) -> tuple[str, list[Attachment]]:
    plain: str | None = None
    html: str | None = None
    files: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if _is_attachment(part):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data:
                name = part.get_filename() or f"attachment.{part.get_content_subtype() or 'bin'}"
                files.append(Attachment(str(name), part.get_content_type(), data))
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = _text_of(part)
        elif ctype == "text/html" and html is None:
            html = _text_of(part)
    body = plain if plain is not None else _strip_html(html) if html is not None else ""
    return body.replace("\r\n", "\n"), files


def strip_quoted(text: str) -> str:
    """The new text of a reply: without the quoted earlier mail at its end (``> `` lines and
    the "On ... wrote:" line above them) or below an "Original Message" separator.

    A mail that is nothing but quotes is kept whole (better too much than nothing)."""
    lines = text.rstrip().split("\n")
    for i, line in enumerate(lines):
        if _ORIGINAL_RE.match(line):
            head = "\n".join(lines[:i]).strip()
            return head or text.strip()
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if end == len(lines):
        return text.strip()
    if end > 0 and _ATTRIBUTION_RE.match(lines[end - 1]):
        end -= 1
    head = "\n".join(lines[:end]).strip()
    return head or text.strip()


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one mail as fetched from the server (never raises on malformed input)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    name, addr = _sender(msg)
    body, files = _body_and_files(msg)
    own_id = (message_ids(_header(msg, "Message-ID")) or [""])[0]
    if not own_id:
        own_id = f"<sha256-{hashlib.sha256(raw).hexdigest()[:32]}@no-message-id>"
    return ParsedMail(
        message=msg,
        message_id=own_id,
        from_addr=addr,
        from_name=name,
        subject=_header(msg, "Subject"),
        in_reply_to=(message_ids(_header(msg, "In-Reply-To")) or [""])[0],
        references=message_ids(_header(msg, "References")),
        date=_header(msg, "Date"),
        body=strip_quoted(body)[:MAX_BODY_CHARS],
        attachments=files,
    )


def _sender(msg: Message) -> tuple[str, str]:
    """The display name and the lower-case address of the (first) From."""
    try:
        header = msg.get("From")
        addresses: tuple[Address, ...] = getattr(header, "addresses", ())
        if addresses:
            first = addresses[0]
            return str(first.display_name or ""), str(first.addr_spec or "").strip().lower()
    except Exception:  # the stdlib's header parser fails on some hostile input
        pass
    name, addr = parseaddr(_raw(msg, "From"))
    return name, addr.strip().lower()


def _raw(msg: Message, name: str) -> str:
    """A header's text as written (no parsing), '' when absent."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return ""


def _local(addr: str) -> str:
    return addr.rpartition("@")[0].lower()


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2].strip().lower().rstrip(".")


def ignore_reason(mail: ParsedMail, own_address: str) -> str | None:
    """Why this mail must not be answered (None: it may be). Loop protection: an answer to
    an auto-reply, a bounce, a list or ourselves could start a mail loop or spam a list."""
    msg = mail.message
    own = own_address.strip().lower()
    if not mail.from_addr:
        return "no sender"
    if own and mail.from_addr == own:
        return "our own mail"
    if (
        own
        and mail.message_id.lower().startswith(f"<{MESSAGE_ID_PREFIX}.")
        and (mail.message_id.lower().endswith(f"@{_domain(own)}>"))
    ):
        return "our own mail"  # one of our answers come back (forwarded, From: rewritten)
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if any(h in msg for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply")):
        return "auto-reply"
    suppress = _header(msg, "X-Auto-Response-Suppress").lower()
    if suppress and suppress != "none":
        return "X-Auto-Response-Suppress"
    precedence = _header(msg, "Precedence").lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _local(mail.from_addr) in _BOUNCE_LOCALS:
        return "bounce (mailer daemon)"
    if msg.get_content_type() == "multipart/report":
        return "bounce (delivery report)"
    if "Return-Path" in msg and _raw(msg, "Return-Path").strip() in ("<>", ""):
        return "bounce (null return path)"
    if any(h in msg for h in ("List-Id", "List-Unsubscribe", "List-Post")):
        return "mailing list"
    return None


def _aligned(a: str, b: str) -> bool:
    a, b = a.strip().lower().rstrip("."), b.strip().lower().rstrip(".")
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def sender_authenticated(mail: ParsedMail, authserv_id: str = "") -> tuple[bool, str]:
    """Whether the receiving server vouched for the From: domain, and why (or why not).

    The server we read from adds ``Authentication-Results`` on top of the headers, so the
    first one is its own (a sender can add more, lower down); with ``authserv_id`` only that
    server's count. DMARC pass, or SPF / DKIM pass aligned with the From: domain, is enough.
    """
    from_domain = _domain(mail.from_addr)
    if not from_domain:
        return False, "no From: domain"
    results = [
        " ".join(str(value).split())
        for key, value in mail.message.raw_items()
        if key.lower() == "authentication-results"
    ]
    if not results:
        return False, "no Authentication-Results header"
    wanted = authserv_id.strip().lower()
    trusted = next((r for r in results if not wanted or _aligned(r.split(";", 1)[0], wanted)), None)
    if trusted is None:
        return False, f"no Authentication-Results from {wanted}"
    methods = {m.lower(): v.lower() for m, v in _AUTH_METHOD_RE.findall(trusted)}
    props = {p.lower(): v.strip('"').lower() for p, v in _AUTH_PROP_RE.findall(trusted)}
    if methods.get("dmarc") == "pass":
        return True, "dmarc=pass"
    if methods.get("spf") == "pass":
        mailfrom = props.get("smtp.mailfrom") or props.get("smtp.from") or ""
        if _aligned(_domain(mailfrom) if "@" in mailfrom else mailfrom, from_domain):
            return True, "spf=pass aligned"
    if methods.get("dkim") == "pass":
        signer = props.get("header.d") or _domain(props.get("header.from", ""))
        if _aligned(signer, from_domain):
            return True, "dkim=pass aligned"
    return False, "SPF/DKIM/DMARC did not pass for the From: domain"


def thread_root(mail: ParsedMail) -> str:
    """The Message-ID that names this mail's thread (see the module docstring)."""
    if mail.references:
        return mail.references[0]
    return mail.in_reply_to or mail.message_id


def thread_key(root_id: str) -> str:
    """A short, colon-free name of a thread for session keys (Message-IDs may hold ``:``)."""
    return hashlib.sha256(root_id.encode("utf-8", "replace")).hexdigest()[:16]
