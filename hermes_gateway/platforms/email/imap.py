"""One IMAP connection to the agent's INBOX over aioimaplib, every command with a deadline.

aioimaplib is asyncio-native and kept (the other async IMAP clients are forks or wrappers
that run imaplib in threads). What it does not do, this wrapper adds: a connection that
drops is noticed at once (its ``conn_lost_cb`` sets :attr:`ImapMailbox.lost`, which every
pending command races), every command has a timeout, a refused login is told apart from a
network failure (:class:`LoginRefused`), and the few responses we use are parsed here.

Mail is read with ``BODY.PEEK[]`` so that reading does not mark it ``\\Seen``: the adapter
marks a mail seen only after the gateway stored it (see the adapter's docstring).
"""

from __future__ import annotations

import asyncio
import imaplib
import re
import ssl
import time
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import aioimaplib

__all__ = ["FETCH_BATCH", "ConnectionLost", "ImapError", "ImapMailbox", "LoginRefused"]

T = TypeVar("T")

_UID_RE = re.compile(rb"\bUID (\d+)")
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")
FETCH_BATCH = 25
"""Mails fetched per ``UID FETCH`` (one round trip for many small mails; the adapter
hands them in and marks them seen per batch)."""


class ImapError(Exception):
    """The server refused a command or answered something we cannot read."""


class LoginRefused(ImapError):
    """The server refused the address/password (the user has to change them)."""


class ConnectionLost(ImapError):
    """The connection ended or a command got no answer in time."""


def _ok(response: Any, what: str) -> Any:
    if getattr(response, "result", None) != "OK":
        lines = getattr(response, "lines", None) or [b""]
        last = lines[-1]
        text = last.decode("utf-8", "replace") if isinstance(last, bytes | bytearray) else str(last)
        raise ImapError(f"{what} failed: {text.strip() or response!r}")
    return response


def _arrived(line: bytes) -> float | None:
    stamp = imaplib.Internaldate2tuple(line)
    return None if stamp is None else time.mktime(stamp)


def _uid_set(uids: Iterable[int]) -> str:
    return ",".join(str(u) for u in uids)


class ImapMailbox:
    """The INBOX of one account; :meth:`open` connects, logs in and selects it."""

    def __init__(self, host: str, port: int, *, tls: bool, timeout: float) -> None:
        self.host, self.port, self.tls, self.timeout = host, port, tls, timeout
        self.lost = asyncio.Event()
        self._client: aioimaplib.IMAP4 | None = None

    @property
    def can_idle(self) -> bool:
        return self._client is not None and self._client.has_capability("IDLE")

    def _on_lost(self, exc: Exception | None) -> None:
        self.lost.set()

    async def _call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Run one command; a dropped connection or a silent server ends it with
        :class:`ConnectionLost` instead of a hang."""
        task = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, lost},
                timeout=self.timeout if timeout is None else timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            lost.cancel()
        if task in done:
            try:
                return task.result()
            except (aioimaplib.Abort, TimeoutError, aioimaplib.CommandTimeout) as exc:
                raise ConnectionLost(f"the IMAP connection failed: {exc}") from exc
        task.cancel()
        if lost in done:
            raise ConnectionLost("the IMAP server closed the connection")
        raise ConnectionLost(f"the IMAP server did not answer within {self.timeout:g} s")

    async def open(self, user: str, password: str) -> None:
        """Connect, log in and select INBOX (raises LoginRefused, ConnectionLost, OSError)."""
        context = ssl.create_default_context() if self.tls else None
        client = aioimaplib.IMAP4(
            host=self.host,
            port=self.port,
            timeout=self.timeout,
            conn_lost_cb=self._on_lost,
            ssl_context=context,
        )
        self._client = client
        try:
            await asyncio.wait_for(client.wait_hello_from_server(), self.timeout)
        except TimeoutError as exc:
            raise ConnectionLost(f"no IMAP greeting within {self.timeout:g} s") from exc
        response = await self._call(client.login(user, password))
        if response.result != "OK":
            last = response.lines[-1] if response.lines else b""
            text = last.decode("utf-8", "replace") if isinstance(last, bytes) else str(last)
            raise LoginRefused(text.strip() or "login refused")
        _ok(await self._call(client.select("INBOX")), "SELECT INBOX")

    async def close(self) -> None:
        """Log out politely when possible; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if not self.lost.is_set() and client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 2.0)
        except Exception:  # the connection is going away either way
            pass
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()

    def _need(self) -> aioimaplib.IMAP4:
        if self._client is None:
            raise ConnectionLost("not connected")
        return self._client

    async def unseen(self) -> list[int]:
        """UIDs of the mails not yet marked seen, oldest first."""
        client = self._need()
        response = _ok(await self._call(client.uid_search("UNSEEN", charset=None)), "SEARCH")
        uids: set[int] = set()
        for line in response.lines:
            if isinstance(line, bytes | bytearray):
                text = bytes(line).strip()
                if text.startswith(b"SEARCH"):
                    text = text[len(b"SEARCH") :]
                if text and all(p.isdigit() for p in text.split()):
                    uids.update(int(p) for p in text.split())
        return sorted(uids)

    async def envelopes(self, uids: list[int]) -> dict[int, tuple[int, float | None]]:
        """Size in bytes and arrival time (the server's INTERNALDATE, epoch seconds) of each
        mail of ``uids``: huge or stale mail is left alone without being downloaded."""
        client = self._need()
        response = _ok(
            await self._call(client.uid("fetch", _uid_set(uids), "(UID RFC822.SIZE INTERNALDATE)")),
            "FETCH",
        )
        found: dict[int, tuple[int, float | None]] = {}
        for line in response.lines:
            if isinstance(line, bytes | bytearray):
                uid, size = _UID_RE.search(line), _SIZE_RE.search(line)
                if uid and size:
                    found[int(uid.group(1))] = (int(size.group(1)), _arrived(bytes(line)))
        return found

    async def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """The raw mails of ``uids`` (without setting ``\\Seen``); missing ones are absent."""
        client = self._need()
        found: dict[int, bytes] = {}
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            response = _ok(
                await self._call(client.uid("fetch", _uid_set(chunk), "(UID BODY.PEEK[])")),
                "FETCH",
            )
            uid: int | None = None
            for line in response.lines:
                if isinstance(line, bytearray):
                    if uid is not None:
                        found[uid] = bytes(line)
                    uid = None
                elif isinstance(line, bytes):
                    match = _UID_RE.search(line)
                    if match:
                        uid = int(match.group(1))
        return found

    async def mark_seen(self, uids: list[int]) -> None:
        if not uids:
            return
        client = self._need()
        _ok(
            await self._call(client.uid("store", _uid_set(uids), "+FLAGS.SILENT (\\Seen)")),
            "STORE",
        )

    async def idle(self, timeout: float) -> bool:
        """Wait in IDLE until the server tells of a change or ``timeout`` passes.

        Returns True when the server pushed something (a new mail: look again)."""
        client = self._need()
        idle = await self._call(client.idle_start(timeout=timeout))
        try:
            push = await self._call(client.wait_server_push(timeout + 5), timeout + 10)
        finally:
            if client.has_pending_idle() and not self.lost.is_set():
                client.idle_done()
        await self._call(asyncio.wait_for(idle, self.timeout))
        return bool(push != aioimaplib.STOP_WAIT_SERVER_PUSH)

    async def noop(self) -> None:
        _ok(await self._call(self._need().noop()), "NOOP")
