"""IRC as a gateway platform: channels and private messages over one connection.

Its parts:

* :mod:`.protocol`: parsing and building lines, fitting text into 512-byte lines;
* :mod:`.client`: the socket (TLS), registration (PASS, SASL PLAIN, nick collisions), paced
  writing through :mod:`.flood`'s token bucket;
* :mod:`.inbound`: which PRIVMSGs are for the bot, and their sessions.

Connection. The shared :class:`~hermes_gateway.platforms.connection.ConnectionLoop` runs
:meth:`IrcAdapter._session`: connect, register, identify to NickServ, join the channels, and
report "connected" once they are joined (or refused: a channel that will not have us is named
in the state, it does not stop DMs). A quiet server is PINGed; no answer and the connection
counts as lost. The loop reconnects with the shared backoff and joins the channels again.

Delivery. IRC cannot edit, so an answer is sent once, when finished
(:class:`~hermes_gateway.platforms.base.FinalOnlyDelivery`), line by line, long lines cut to
what a recipient's 512-byte line can hold. An answer finished while the connection is down
waits for it (``send_wait``) rather than being lost. IRC never repeats a line, so nothing can
arrive twice; what was said while the bot was away is not seen (IRC keeps no history).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config, IrcConfig
from hermes_gateway.delivery import TransientDeliveryError
from hermes_gateway.delivery.errors import PermanentDeliveryError
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import FatalPlatformError, IntakeError, PlatformAdapter
from hermes_gateway.platforms.chat_locks import ChatLocks
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.irc.client import ConnectionClosed, Identity, IrcConnection
from hermes_gateway.platforms.irc.flood import TokenBucket
from hermes_gateway.platforms.irc.inbound import IrcInbound
from hermes_gateway.platforms.irc.protocol import Message, fit_lines, nick_of, text_budget
from hermes_gateway.tasks import TaskSet

__all__ = ["IrcAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 30.0
"""How long start() waits for the first connection before returning anyway (still trying)."""
JOIN_WAIT = 10.0
"""How long the channels may take to confirm our JOIN before we report connected anyway."""
_JOIN_ERRORS = frozenset({"403", "405", "471", "473", "474", "475", "476", "477"})


class IrcAdapter(PlatformAdapter):
    """IRC channels (when addressed by nick) and private messages.

    Args:
        config: The gateway configuration (``config.platforms.irc`` is used).
        policy: Who may talk (the runner decides; kept for symmetry with other adapters).
    """

    name = "irc"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg: IrcConfig = config.platforms.irc
        self.policy = policy
        self.inbound = IrcInbound(self.cfg)
        self.bucket = TokenBucket(self.cfg.flood_burst, self.cfg.flood_rate)
        self.link = ConnectionLoop(
            self,
            "IRC",
            Backoff(self.cfg.reconnect_initial, self.cfg.reconnect_cap, jitter=0.2, upward=True),
            describe=self._describe,
        )
        self.conn: IrcConnection | None = None
        self.joined: set[str] = set()
        self.connections = 0
        """Registrations completed (for tests and the log)."""
        self._ready = asyncio.Event()
        self._tasks = TaskSet("irc")
        self._chat_locks = ChatLocks()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.cfg.server:
            raise FatalPlatformError("IRC_SERVER is not set")
        await self.link.start(self._session, wait=START_WAIT, waiting="waiting for the IRC server")

    async def stop(self) -> None:
        await self.link.stop()
        await self._tasks.cancel_all(timeout=5)
        self.link.set_state("stopped")

    def _tls(self) -> ssl.SSLContext | None:
        if not self.cfg.use_tls:
            return None
        return ssl.create_default_context(cafile=self.cfg.tls_ca_file or None)

    def _identity(self) -> Identity:
        cfg = self.cfg
        return Identity(
            nick=cfg.nickname,
            username=(cfg.nickname.replace("-", "")[:9] or "hermes"),
            server_password=cfg.server_password,
            sasl_username=cfg.sasl_username,
            sasl_password=cfg.sasl_password,
        )

    async def _session(self) -> str:
        """One connection from connect to its end; the link reconnects after it."""
        cfg = self.cfg
        conn = await IrcConnection.open(
            cfg.server,
            cfg.default_port,
            tls=self._tls(),
            timeout=cfg.connect_timeout,
            bucket=self.bucket,
        )
        try:
            await conn.register(self._identity(), cfg.connect_timeout)
            self.connections += 1
            self.inbound.nick = conn.nick
            if cfg.nickserv_password:
                await conn.send_now("PRIVMSG", "NickServ", f"IDENTIFY {cfg.nickserv_password}")
            wanted = {IrcConfig.fold(c): c for c in cfg.channel}
            self.joined = set()
            if wanted:
                await conn.send_now("JOIN", ",".join(wanted.values()))
            return await self._run(conn, wanted)
        finally:
            self._ready.clear()
            self.conn = None
            await conn.close("Hermes Agent stopping" if self.link.stopping else "")

    def _up(self, conn: IrcConnection, refused: dict[str, str]) -> None:
        self.conn = conn
        self._ready.set()
        detail = f"as {conn.nick} on {self.cfg.server}"
        if self.joined:
            detail += ", in " + ", ".join(sorted(self.joined))
        if refused:
            detail += "; not joined: " + ", ".join(f"{c} ({why})" for c, why in refused.items())
        self.link.connected(detail)

    async def _run(self, conn: IrcConnection, wanted: dict[str, str]) -> str:
        """Read until the connection ends; returns why it ended."""
        loop = asyncio.get_running_loop()
        join_deadline = loop.time() + JOIN_WAIT
        refused: dict[str, str] = {}
        waiting_pong = False
        if not wanted:
            self._up(conn, refused)
        while True:
            timeout = self.cfg.ping_interval
            if not self._ready.is_set():
                timeout = max(0.01, min(timeout, join_deadline - loop.time()))
            msg = await conn.read(timeout)
            if msg is None:
                if not self._ready.is_set():
                    for folded in wanted:
                        if folded not in self.joined:
                            refused.setdefault(folded, "no answer")
                    self._up(conn, refused)
                elif waiting_pong:
                    return "the IRC server stopped answering (no PONG)"
                else:
                    await conn.send_now("PING", "hermes")
                    waiting_pong = True
                continue
            waiting_pong = False
            if msg.command == "ERROR":
                return f"the IRC server closed the connection: {msg.param(0)}"
            self._handle(conn, msg, refused)
            if msg.command == "PING":
                await conn.send_now("PONG", msg.param(0))
            if not self._ready.is_set() and all(c in self.joined or c in refused for c in wanted):
                self._up(conn, refused)

    def _handle(self, conn: IrcConnection, msg: Message, refused: dict[str, str]) -> None:
        cmd = msg.command
        me = IrcConfig.fold(conn.nick)
        if cmd == "PRIVMSG":
            event = self.inbound.normalize(msg, conn.isupport.get("CHANTYPES", "#&"))
            if event is not None:
                self._take(event)
        elif cmd == "JOIN" and IrcConfig.fold(nick_of(msg.source)) == me:
            self.joined.add(IrcConfig.fold(msg.param(0)))
            if "!" in msg.source:
                conn.own_prefix = msg.source
        elif cmd in _JOIN_ERRORS:
            refused[IrcConfig.fold(msg.param(1))] = msg.param(2) or cmd
            log.warning("IRC: cannot join %s: %s", msg.param(1), msg.param(2))
        elif cmd == "NICK" and IrcConfig.fold(nick_of(msg.source)) == me:
            conn.nick = self.inbound.nick = msg.param(0)
            if conn.own_prefix:
                conn.own_prefix = conn.nick + conn.own_prefix[conn.own_prefix.find("!") :]
        elif cmd == "KICK" and IrcConfig.fold(msg.param(1)) == me:
            self.joined.discard(IrcConfig.fold(msg.param(0)))
            log.warning("IRC: kicked from %s: %s", msg.param(0), msg.param(2))
        elif cmd == "005":
            for token in msg.params[1:-1]:
                key, _, value = token.partition("=")
                conn.isupport[key.upper()] = value

    # --- inbound ------------------------------------------------------------------------

    def _take(self, event: MessageEvent) -> None:
        """Hand a message over in its chat's order, without holding up the reading."""
        self._tasks.spawn(self._hand_over(event), name=f"{self.name}-hand-over")

    async def _hand_over(self, event: MessageEvent) -> None:
        async with self._chat_locks.of(event.source.chat_id):
            try:
                await self.dispatch(event)
            except IntakeError as exc:
                # IRC will not say it again: the sender is the only one who can.
                log.warning("IRC message from %s not stored: %s", event.source.user_name, exc)
            except Exception:
                log.exception("IRC message from %s could not be handled", event.source.user_name)

    # --- delivery -----------------------------------------------------------------------

    async def _connection(self) -> IrcConnection:
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.cfg.send_wait)
            except TimeoutError as exc:
                raise TransientDeliveryError("IRC is not connected") from exc
        conn = self.conn
        if conn is None:
            raise TransientDeliveryError("IRC is not connected")
        return conn

    async def send(self, source: SessionSource, text: str) -> None:
        """Send ``text`` to the channel or nick of ``source``, one line at a time."""
        target = source.chat_id
        if not target or any(ch in target for ch in " ,\r\n\0"):
            raise PermanentDeliveryError(f"not an IRC channel or nick: {target!r}")
        conn = await self._connection()
        budget = min(
            self.cfg.max_message_length, text_budget(conn.nick, conn.own_prefix, "PRIVMSG", target)
        )
        for line in fit_lines(text, budget):
            try:
                await conn.send("PRIVMSG", target, line)
            except (ConnectionError, OSError, TimeoutError) as exc:
                raise TransientDeliveryError(f"IRC connection lost while sending: {exc}") from exc

    def _describe(self, exc: BaseException) -> str:
        """Why a connection ended, in the words the Platforms pane shows."""
        where = f"{self.cfg.server}:{self.cfg.default_port}"
        if isinstance(exc, ConnectionClosed):
            return str(exc)
        if isinstance(exc, ssl.SSLError):
            return f"TLS with {where} failed: {exc.reason or exc}"
        if isinstance(exc, TimeoutError):
            return str(exc) or f"{where} did not answer in time"
        if isinstance(exc, OSError):
            return f"cannot reach {where}: {exc.strerror or exc}"
        return str(exc) or type(exc).__name__
