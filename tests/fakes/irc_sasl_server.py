"""A fake IRC server for what ngircd lacks: IRCv3 capability negotiation and SASL PLAIN.

It follows the IRCv3 wire format (``CAP LS 302`` / ``CAP REQ`` / ``ACK``, ``AUTHENTICATE``
in 400-byte base64 pieces, numerics 900/903/904, ``001`` after ``CAP END``), checks the
PLAIN credentials it is given, and lets a test write lines to the registered client (with
message tags) and read what the client sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

__all__ = ["FakeSaslIrc"]

NAME = "sasl.test.local"


class FakeSaslIrc:
    """One-client-at-a-time fake; ``accounts`` maps SASL user names to passwords."""

    def __init__(self, accounts: dict[str, str]) -> None:
        self.accounts = accounts
        self.port = 0
        self.password = ""
        """No server password (what the harness asks of a server)."""
        self.logins: list[str] = []
        """Accounts logged in (one entry per successful SASL exchange)."""
        self.failures = 0
        self.welcomes = 0
        """Registrations completed (one per connection)."""
        self.received: list[str] = []
        """Every line clients sent, in order."""
        self.welcomed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._nick = ""
        self._changed = asyncio.Event()

    async def __aenter__(self) -> FakeSaslIrc:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        if self._writer is not None:
            self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _send(self, line: str) -> None:
        assert self._writer is not None
        self._writer.write(line.encode() + b"\r\n")
        await self._writer.drain()

    async def deliver(self, line: str) -> None:
        """Write ``line`` (e.g. ``@msgid=1 :alice!a@h PRIVMSG bot :hi``) to the client."""
        await self.welcomed.wait()
        await self._send(line)

    async def wait_received(self, predicate: Any, timeout: float = 10.0) -> list[str]:
        async with asyncio.timeout(timeout):
            while not (found := [line for line in self.received if predicate(line)]):
                self._changed.clear()
                await self._changed.wait()
        return found

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        pieces: list[str] = []
        authed = capping = False
        user_sent = welcomed = False
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            line = raw.decode().rstrip("\r\n")
            self.received.append(line)
            self._changed.set()
            words = line.split(" ")
            cmd = words[0].upper()
            if cmd == "CAP" and words[1] == "LS":
                capping = True
                await self._send(f":{NAME} CAP * LS :message-tags sasl=PLAIN,EXTERNAL")
            elif cmd == "CAP" and words[1] == "REQ":
                await self._send(f":{NAME} CAP * ACK :sasl")
            elif cmd == "AUTHENTICATE" and words[1] == "PLAIN":
                await self._send("AUTHENTICATE +")
            elif cmd == "AUTHENTICATE":
                if words[1] != "+":
                    pieces.append(words[1])
                if words[1] == "+" or len(words[1]) < 400:
                    authzid, user, password = base64.b64decode("".join(pieces)).decode().split("\0")
                    pieces.clear()
                    if self.accounts.get(user) == password and authzid in ("", user):
                        authed = True
                        self.logins.append(user)
                        await self._send(f":{NAME} 900 * * {user} :You are now logged in")
                        await self._send(f":{NAME} 903 * :SASL authentication successful")
                    else:
                        self.failures += 1
                        await self._send(f":{NAME} 904 * :SASL authentication failed")
            elif cmd == "NICK":
                self._nick = words[1]
            elif cmd == "USER":
                user_sent = True
            elif cmd == "CAP" and words[1] == "END":
                capping = False
            if user_sent and self._nick and not capping and not welcomed:
                if authed or not self.accounts:
                    await self._send(f":{NAME} 001 {self._nick} :Welcome")
                    welcomed = True
                    self.welcomes += 1
                    self.welcomed.set()
