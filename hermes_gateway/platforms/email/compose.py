"""Writing the answer mail: a proper reply in the sender's thread, plain text.

A reply carries ``In-Reply-To`` (the mail it answers) and ``References`` (that mail's
references plus its id, the root kept first), keeps the subject with one ``Re:``, quotes the
mail it answers under the answer (``> `` lines) when asked to, and is marked
``Auto-Submitted: auto-replied`` (RFC 3834) so that other robots do not answer it back.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_QUOTE_CHARS",
    "MESSAGE_ID_PREFIX",
    "NEW_SUBJECT",
    "ThreadContext",
    "answer_id",
    "bare_subject",
    "build_mail",
    "reply_subject",
]

NEW_SUBJECT = "Hermes Agent"
"""The subject of a mail that answers nothing (a cron result to the home address)."""
MESSAGE_ID_PREFIX = "hermes"
"""Our Message-IDs start ``<hermes.``: a reply naming one is looked up in our threads."""
MAX_REFERENCES = 20
"""References kept: the root, then the newest (RFC 5322 allows trimming the middle)."""
MAX_QUOTE_CHARS = 4_000
_RE_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*:\s*", re.IGNORECASE)


@dataclass
class ThreadContext:
    """What an answer in a thread needs to know about the mail it answers."""

    subject: str = ""
    parent_id: str = ""
    """The Message-ID of the newest mail of the thread: the answer's In-Reply-To."""
    references: list[str] = field(default_factory=list)
    """The parent's own References (the answer adds the parent's id)."""
    parent_date: str = ""
    parent_from: str = ""
    quote: str = ""
    """The parent's new text, quoted under the answer."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ThreadContext:
        if not isinstance(data, dict):
            return cls()
        refs = data.get("references")
        return cls(
            subject=str(data.get("subject", "")),
            parent_id=str(data.get("parent_id", "")),
            references=[str(r) for r in refs] if isinstance(refs, list) else [],
            parent_date=str(data.get("parent_date", "")),
            parent_from=str(data.get("parent_from", "")),
            quote=str(data.get("quote", "")),
        )


def bare_subject(subject: str) -> str:
    """The subject without its ``Re:``/``RE:``/``Aw:`` prefixes."""
    bare = subject.strip()
    while _RE_PREFIX.match(bare):
        bare = _RE_PREFIX.sub("", bare, count=1)
    return bare


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` with exactly one ``Re:`` (a ``RE:``/``Aw:`` already there counts)."""
    bare = bare_subject(subject)
    return f"Re: {bare}" if bare else "Re: (no subject)"


def _references(ctx: ThreadContext) -> list[str]:
    refs = [*ctx.references, ctx.parent_id] if ctx.parent_id else list(ctx.references)
    unique = list(dict.fromkeys(r for r in refs if r))
    if len(unique) > MAX_REFERENCES:
        unique = [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
    return unique


def _quoted(ctx: ThreadContext) -> str:
    text = ctx.quote.strip()
    if not text:
        return ""
    if len(text) > MAX_QUOTE_CHARS:
        text = text[:MAX_QUOTE_CHARS].rstrip() + " [...]"
    who = ctx.parent_from or "you"
    head = f"On {ctx.parent_date}, {who} wrote:" if ctx.parent_date else f"{who} wrote:"
    lines = "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))
    return f"{head}\n{lines}"


def answer_id(domain: str, to: str, body: str, ctx: ThreadContext | None) -> str:
    """The Message-ID of an answer: the same answer to the same mail gets the same id.

    An answer delivered again after a kill (the SMTP server took it, the gateway died before
    recording that) is then the same message, which mail stores and clients show once."""
    if ctx is None or not ctx.parent_id:
        return make_msgid(idstring=None, domain=domain).replace("<", f"<{MESSAGE_ID_PREFIX}.", 1)
    digest = hashlib.sha256(f"{ctx.parent_id}\n{to}\n{body}".encode("utf-8", "replace"))
    return f"<{MESSAGE_ID_PREFIX}.{digest.hexdigest()[:32]}@{domain}>"


def build_mail(
    *,
    sender: str,
    to: str,
    body: str,
    ctx: ThreadContext | None,
    quote: bool,
    files: Sequence[tuple[Path, bytes]] = (),
) -> EmailMessage:
    """The answer to ``ctx`` (a new mail when None), with ``files`` attached."""
    msg = EmailMessage()
    domain = sender.rpartition("@")[2] or "localhost"
    msg["From"] = sender
    msg["To"] = to
    if ctx is not None and (ctx.parent_id or ctx.subject):
        msg["Subject"] = reply_subject(ctx.subject)
        if ctx.parent_id:
            msg["In-Reply-To"] = ctx.parent_id
        refs = _references(ctx)
        if refs:
            msg["References"] = " ".join(refs)
    else:
        msg["Subject"] = NEW_SUBJECT
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = answer_id(domain, to, body, ctx)
    msg["Auto-Submitted"] = "auto-replied"
    text = body.rstrip() or "(no answer)"
    if quote and ctx is not None:
        quoted = _quoted(ctx)
        if quoted:
            text = f"{text}\n\n{quoted}"
    msg.set_content(text + "\n", subtype="plain", charset="utf-8")
    for path, data in files:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        major, _, minor = mime.partition("/")
        msg.add_attachment(data, maintype=major, subtype=minor, filename=path.name)
    return msg
