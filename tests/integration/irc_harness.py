"""A gateway with the IRC adapter on a real ngircd, and IRC users to talk to it.

:class:`IrcUser` is a deliberately separate, minimal client (raw sockets, its own line
splitting) so that what the bot puts on the wire is checked by code that shares nothing with
the adapter: the raw bytes of every line received are kept for the 512-byte checks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.irc.adapter import IrcAdapter
from hermes_gateway.runner import GatewayRunner
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder
from tests.integration._platform_harness import started_gateway
from tests.integration.irc_server import NGIRCD

BOT = "hermes-bot"
CHANNEL = "#hermes"

needs_ngircd = pytest.mark.skipif(
    not NGIRCD, reason="ngircd is not installed (apt-get install ngircd; .ci/run does it)"
)


@dataclass
class Received:
    """One line as received: the raw bytes (CRLF included) and its parts."""

    raw: bytes
    source: str
    command: str
    params: list[str]

    @property
    def nick(self) -> str:
        return self.source.split("!", 1)[0]


def _split(raw: bytes) -> Received:
    text = raw.decode("utf-8").rstrip("\r\n")
    source = ""
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
    head, sep, trailing = text.partition(" :")
    parts = head.split()
    params = parts[1:] + ([trailing] if sep else [])
    return Received(raw, source, parts[0] if parts else "", params)


@dataclass
class IrcUser:
    """A person on IRC: connects, joins, talks, and keeps every line received."""

    nick: str
    port: int
    lines: list[Received] = field(default_factory=list)
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    async def connect(self, password: str = "") -> IrcUser:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._task = asyncio.get_running_loop().create_task(self._read(reader))
        if password:
            await self.raw(f"PASS {password}")
        await self.raw(f"NICK {self.nick}")
        await self.raw(f"USER {self.nick} 0 * :test user")
        # ngircd paces registrations from one address: fifty at once take a while under load
        await self.wait(lambda: any(r.command == "001" for r in self.lines), timeout=120)
        return self

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                self.closed = True
                self._arrived.set()
                return
            line = _split(raw)
            if line.command == "PING":
                await self.raw(f"PONG :{line.params[0] if line.params else ''}")
            self.lines.append(line)
            self._arrived.set()

    async def raw(self, line: str) -> None:
        assert self._writer is not None
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.closed:
                    raise ConnectionError(f"{self.nick}: the server closed the connection")
                self._arrived.clear()
                await self._arrived.wait()

    async def join(self, channel: str = CHANNEL) -> None:
        await self.raw(f"JOIN {channel}")
        await self.wait(
            lambda: any(
                r.command == "JOIN" and r.nick == self.nick and r.params[0] == channel
                for r in self.lines
            )
        )

    async def say(self, target: str, text: str) -> None:
        await self.raw(f"PRIVMSG {target} :{text}")

    def from_bot(self, target: str | None = None) -> list[Received]:
        """PRIVMSGs the bot sent (to us, or to ``target``)."""
        want = (target or self.nick).lower()
        return [
            r
            for r in self.lines
            if r.command == "PRIVMSG" and r.nick.startswith(BOT) and r.params[0].lower() == want
        ]

    async def wait_bot_lines(
        self, count: int, target: str | None = None, timeout: float = 15.0
    ) -> list[str]:
        await self.wait(lambda: len(self.from_bot(target)) >= count, timeout)
        return [r.params[-1] for r in self.from_bot(target)]

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self.raw("QUIT :bye")
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class IrcServer(Protocol):
    """What the harness needs of a server: ngircd, or the SASL fake."""

    port: int
    password: str


@dataclass
class Harness:
    server: IrcServer
    gateway: Gateway
    runner: GatewayRunner
    adapter: IrcAdapter
    recorder: Recorder
    users: list[IrcUser] = field(default_factory=list)

    async def user(self, nick: str, *, join: bool = True) -> IrcUser:
        # A connection the server drops before registering (its accept queue full under a
        # burst of connects from one address) is a person reconnecting, not a test failure.
        for attempt in range(3):
            try:
                user = await IrcUser(nick, self.server.port).connect(self.server.password)
                break
            except ConnectionError:
                if attempt == 2:
                    raise
        self.users.append(user)
        if join:
            await user.join()
        return user

    def states(self) -> list[tuple[str, str, float | None]]:
        return [
            (e.state, e.detail, e.retry_in)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "irc"
        ]

    async def wait_state(self, state: str, timeout: float = 10.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] == state, timeout
        )


def irc_config(home: Any, openai: FakeOpenAI, server: IrcServer, **env: str) -> Config:
    """Config as a Hermes user writes it (IRC_* names), tuned for fast tests."""
    base = {
        "IRC_SERVER": "127.0.0.1",
        "IRC_PORT": str(server.port),
        "IRC_USE_TLS": "false",
        "IRC_NICKNAME": BOT,
        "IRC_CHANNEL": CHANNEL,
    }
    config = make_config(home, openai, **{**base, **env})
    section = config.platforms.irc
    section.reconnect_initial = 0.05
    section.reconnect_cap = 0.3
    section.connect_timeout = 5.0
    return config


@contextlib.asynccontextmanager
async def irc_gateway(
    home: Path,
    openai: FakeOpenAI,
    server: IrcServer,
    *,
    configure: Callable[[Config], None] | None = None,
    wait_connected: bool = True,
    **env: str,
) -> AsyncIterator[Harness]:
    """The whole gateway, IRC enabled by config, on ``server`` (already running)."""
    env.setdefault("IRC_ALLOWED_USERS", "alice")
    config = irc_config(home, openai, server, **env)
    async with started_gateway(config, "irc", IrcAdapter, configure) as up:
        harness = Harness(server, up.gateway, up.runner, up.adapter, up.recorder)
        try:
            if wait_connected:
                await harness.wait_state("connected")
            yield harness
        finally:
            for user in harness.users:  # before the gateway stops, as the server sees them
                await user.close()
