"""One IRC connection: the socket (TLS or not), registration, and paced writing.

Our own small client rather than a library: pydle (the one asyncio IRC client with a 2026
release) hands each received line to its own unreferenced task, so two lines from one user
can be handled out of order; it splits long messages by characters, not UTF-8 bytes; its
``throttle`` flag is never used (no flood control); and it runs its own reconnect loop beside
ours. bottom 3 needs Python 3.12; jaraco's ``irc`` brings a dozen packages and a thread-era
design. What a bot needs of RFC 1459/2812 and IRCv3 (CAP, SASL PLAIN, tags) is small.

Registration (:meth:`IrcConnection.register`): ``CAP LS 302`` when SASL is configured, ``PASS``,
``NICK``, ``USER``; SASL PLAIN (``AUTHENTICATE`` in 400-byte pieces); a nick in use gets
``_``, then ``_1``, ``_2``...; ``001`` ends it. A refused password or SASL login, an
erroneous nick or a ban raise :class:`~hermes_gateway.platforms.base.FatalPlatformError`
naming the variable to fix: trying again cannot help.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from dataclasses import dataclass

from hermes_gateway.platforms.base import FatalPlatformError
from hermes_gateway.platforms.irc.flood import TokenBucket
from hermes_gateway.platforms.irc.protocol import Message, build, parse

__all__ = ["ConnectionClosed", "Identity", "IrcConnection"]

log = logging.getLogger(__name__)

READ_LIMIT = 16 * 1024
"""Longest line accepted: 512 bytes of message plus up to 8191 of IRCv3 tags."""
MAX_NICK_TRIES = 10
SASL_CHUNK = 400


class ConnectionClosed(ConnectionError):
    """The server closed the connection (``reason``: its ERROR line, if it sent one)."""


@dataclass(frozen=True)
class Identity:
    """Who we register as."""

    nick: str
    username: str = "hermes"
    realname: str = "Hermes Agent"
    server_password: str = ""
    sasl_username: str = ""
    sasl_password: str = ""


def _alternative(base: str, tries: int) -> str:
    return base + "_" if tries == 1 else f"{base}_{tries - 1}"


class IrcConnection:
    """A registered (or registering) connection; lines in, paced lines out."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bucket: TokenBucket
    ) -> None:
        self._reader, self._writer = reader, writer
        self.bucket = bucket
        self.nick = ""
        self.own_prefix: str | None = None
        """``nick!user@host`` as the server shows us (learnt from our own JOIN)."""
        self.isupport: dict[str, str] = {}
        self.error = ""
        """The server's ERROR text, when it said why it closes."""

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        timeout: float,
        bucket: TokenBucket,
    ) -> IrcConnection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_LIMIT
            ),
            timeout,
        )
        return cls(reader, writer, bucket)

    # --- reading ------------------------------------------------------------------------

    async def read(self, timeout: float) -> Message | None:
        """The next line, or None when ``timeout`` passes without one.

        Raises:
            ConnectionClosed: the server closed the connection.
        """
        while True:
            try:
                raw = await asyncio.wait_for(self._reader.readuntil(b"\n"), timeout)
            except TimeoutError:
                return None
            except asyncio.IncompleteReadError as exc:
                raise ConnectionClosed(self.error or "the server closed the connection") from exc
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)  # an over-long line: drop it
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")  # older clients still send 8-bit charsets
            if not text.strip():
                continue
            message = parse(text)
            if message.command == "ERROR":
                self.error = message.param(0) or "ERROR"
            return message

    # --- writing ------------------------------------------------------------------------

    async def send_now(self, command: str, *params: str) -> None:
        """Write a line at once: registration and PONG (a late PONG costs the connection)."""
        self._writer.write((build(command, *params) + "\r\n").encode("utf-8"))
        await asyncio.wait_for(self._writer.drain(), 30.0)

    async def send(self, command: str, *params: str) -> None:
        """Write a line when the flood bucket allows."""
        line = (build(command, *params) + "\r\n").encode("utf-8")  # refused before waiting
        await self.bucket.take()
        if self._writer.is_closing():
            raise ConnectionClosed("the connection is closed")
        self._writer.write(line)
        await asyncio.wait_for(self._writer.drain(), 30.0)

    async def close(self, quit_message: str = "") -> None:
        if not self._writer.is_closing():
            try:
                if quit_message:
                    await asyncio.wait_for(self.send_now("QUIT", quit_message), 2.0)
            except (OSError, TimeoutError, ConnectionError):
                pass
            self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        except (OSError, TimeoutError, ConnectionError, ssl.SSLError):
            pass

    # --- registration -------------------------------------------------------------------

    async def register(self, me: Identity, timeout: float) -> None:
        """Register as ``me``: returns once the server welcomed us (``001``).

        Raises:
            FatalPlatformError: credentials or nick refused for good.
            TimeoutError: the server did not finish registration in time.
        """
        sasl = bool(me.sasl_username and me.sasl_password)
        if sasl:
            await self.send_now("CAP", "LS", "302")
        if me.server_password:
            await self.send_now("PASS", me.server_password)
        nick, tries = me.nick, 0
        await self.send_now("NICK", nick)
        await self.send_now("USER", me.username, "0", "*", me.realname)
        caps: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("the IRC server did not finish registration")
            msg = await self.read(left)
            if msg is None:
                continue
            cmd = msg.command
            if cmd == "PING":
                await self.send_now("PONG", msg.param(0))
            elif cmd == "001":
                self.nick = msg.param(0) or nick
                return
            elif cmd in ("433", "436", "437"):
                tries += 1
                if tries > MAX_NICK_TRIES:
                    raise TimeoutError(f"the nick {me.nick} and its alternatives are all taken")
                nick = _alternative(me.nick, tries)
                log.info("IRC nick %s is taken; trying %s", me.nick, nick)
                await self.send_now("NICK", nick)
            elif cmd == "432":
                raise FatalPlatformError(
                    f"the IRC server refuses the nick {me.nick!r} ({msg.param(2) or 'erroneous'});"
                    " check IRC_NICKNAME"
                )
            elif cmd == "464":
                raise FatalPlatformError(
                    "the IRC server refused the password (464); check IRC_SERVER_PASSWORD"
                )
            elif cmd == "465":
                raise FatalPlatformError(f"banned from the IRC server: {msg.param(1)}")
            elif cmd == "CAP" and sasl:
                await self._cap(msg, caps)
            elif cmd == "AUTHENTICATE" and msg.param(0) == "+":
                await self._authenticate(me)
            elif cmd in ("903", "907"):
                await self.send_now("CAP", "END")
            elif cmd in ("902", "904", "905", "906"):
                raise FatalPlatformError(
                    f"the IRC server refused the SASL login ({cmd}: {msg.param(1)}); "
                    "check IRC_SASL_USERNAME and IRC_SASL_PASSWORD"
                )
            elif cmd == "ERROR":
                text = msg.param(0)
                if "password" in text.lower():
                    raise FatalPlatformError(
                        f"the IRC server refused the password ({text}); check IRC_SERVER_PASSWORD"
                    )
                raise ConnectionClosed(text)

    async def _cap(self, msg: Message, caps: list[str]) -> None:
        sub = msg.param(1).upper()
        if sub == "LS":
            more = msg.param(2) == "*"
            caps.extend(msg.params[-1].split())
            if more:
                return
            names = {c.split("=", 1)[0] for c in caps}
            if "sasl" not in names:
                raise FatalPlatformError(
                    "the IRC server offers no SASL, but IRC_SASL_USERNAME is set; "
                    "unset it or use IRC_NICKSERV_PASSWORD"
                )
            await self.send_now("CAP", "REQ", "sasl")
        elif sub == "ACK" and "sasl" in msg.params[-1].split():
            await self.send_now("AUTHENTICATE", "PLAIN")
        elif sub == "NAK":
            raise FatalPlatformError(
                "the IRC server would not enable SASL; unset IRC_SASL_USERNAME or ask its admins"
            )

    async def _authenticate(self, me: Identity) -> None:
        blob = f"{me.sasl_username}\0{me.sasl_username}\0{me.sasl_password}".encode()
        encoded = base64.b64encode(blob).decode("ascii")
        pieces = [encoded[i : i + SASL_CHUNK] for i in range(0, len(encoded), SASL_CHUNK)]
        for piece in pieces:
            await self.send_now("AUTHENTICATE", piece)
        if not pieces or len(pieces[-1]) == SASL_CHUNK:
            await self.send_now("AUTHENTICATE", "+")
