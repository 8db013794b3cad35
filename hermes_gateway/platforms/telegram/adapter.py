"""Telegram as a gateway platform, through python-telegram-bot in the gateway's own loop.

python-telegram-bot (PTB) runs as ``initialize() / start() / updater.start_polling()``, never
``run_polling`` (which would want the loop to itself). This module owns the connection:

* start: ``getMe`` (a 401 is fatal: reported as failed, never retried), the bot menu from
  the command registry (``setMyCommands``), then long polling; a network failure while
  starting or polling is retried with exponential backoff and jitter (cap 300 s) and
  reported as "reconnecting in N s", and nothing here can stop another platform;
* inbound: :mod:`.telegram_inbound` turns updates into events; :mod:`.telegram_state`
  remembers which updates were handled so a restart never answers one twice, and keeps the
  ones that arrive during shutdown for the next start;
* outbound: answers stream through the shared :class:`~hermes_gateway.delivery.StreamingTurn`
  over :class:`.telegram_transport.TelegramTransport`, paced by one rate gate per chat,
  with a typing indicator while the agent works.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config
from hermes_gateway.delivery import (
    TELEGRAM_LIMIT,
    RateGate,
    StreamingTurn,
    split_message,
    utf16_len,
)
from hermes_gateway.delivery.typing import TypingTurn
from hermes_gateway.models import ChatType, MessageEvent, SessionSource
from hermes_gateway.platforms.base import FatalPlatformError, PlatformAdapter, TurnDelivery
from hermes_gateway.platforms.telegram.commands import bot_commands
from hermes_gateway.platforms.telegram.inbound import BotIdentity, TelegramInbound, screen_batch
from hermes_gateway.platforms.telegram.state import UpdateLedger
from hermes_gateway.platforms.telegram.transport import ChatTarget, TelegramTransport
from hermes_gateway.tasks import TaskSet

if TYPE_CHECKING:
    from hermes_gateway.store import SessionStore

__all__ = ["TelegramAdapter", "bot_commands"]

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query"]
TYPING_EVERY = 4.5
"""Telegram shows "typing…" for about 5 s per chat action."""
CALL_TIMEOUT = 15.0
INVALID_TOKEN = "Telegram rejected the bot token (401 Unauthorized); check TELEGRAM_BOT_TOKEN"


def describe(exc: BaseException) -> str:
    """A short reason for the Platforms pane."""
    if isinstance(exc, Conflict):
        return "another program is polling with this bot token"
    if isinstance(exc, TimedOut):
        return "Telegram did not answer in time"
    if isinstance(exc, NetworkError):
        return f"network error: {exc}" if str(exc) else "network error"
    return str(exc) or type(exc).__name__


class _PollRequest(HTTPXRequest):
    """The getUpdates connection, watched for a 401 and screened for unparsable updates.

    PTB's polling loop stops silently when the token is revoked while it runs; seeing the
    status here lets the adapter report "failed" instead of looking connected forever.
    Answers are passed through :func:`.telegram_inbound.screen_batch` because PTB would
    otherwise re-fetch a batch holding one malformed update forever (this is the only place
    that sees the raw JSON before PTB parses it).
    """

    def __init__(self, on_unauthorized: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_unauthorized = on_unauthorized

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if code == 401:
            self._on_unauthorized()
        elif code == 200:
            payload = screen_batch(payload)
        return code, payload


class TelegramAdapter(PlatformAdapter):
    """The Telegram platform (see the module docstring)."""

    name = "telegram"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.policy = policy
        self.settings = config.platforms.telegram
        self.app: Application | None = None  # type: ignore[type-arg]
        self.transport: TelegramTransport | None = None
        self.me: BotIdentity | None = None
        # Keeps fire-and-forget work (stopping the updater after a fatal error) referenced.
        self._background = TaskSet("telegram")
        self.gate = self._new_gate()
        self.inbound = TelegramInbound(
            self.settings,
            config.paths.media_dir,
            self._deliver,
            self._finished,
            may_fetch=policy.is_allowed,  # the runner's own policy (gateway.remote_adapters)
        )
        self.ledger = UpdateLedger()
        self.backoff = Backoff(self.settings.reconnect_initial, self.settings.reconnect_cap)
        self.failure: str | None = None
        """Why the adapter gave up for good (invalid token), if it did."""
        self._stopping = False
        self._recovery: asyncio.Task[None] | None = None
        self._turns: weakref.WeakSet[TypingTurn] = weakref.WeakSet()

    def _new_gate(self) -> RateGate:
        s = self.settings
        return RateGate(s.rate_interval, global_per_second=s.global_rate or None)

    # -- where answers go ----------------------------------------------------------
    @property
    def home_source(self) -> SessionSource | None:
        """TELEGRAM_HOME_CHANNEL as a source (``chat`` or ``chat:topic``), for deliveries."""
        raw = self.settings.home_channel.strip()
        if not raw:
            return None
        chat, _, thread = raw.partition(":")
        chat_type: ChatType = "group" if chat.startswith("-") else "dm"
        return SessionSource(self.name, chat, chat_type, thread or None)

    def target_for(self, source: SessionSource) -> str:
        """The transport's chat string for a source (topic vs reply thread remembered)."""
        chat_id = ChatTarget.chat_of(source.chat_id)
        if not source.thread_id:
            return ChatTarget(chat_id).encode()
        topic = self.inbound.thread_kinds.get((source.chat_id, source.thread_id), True)
        return ChatTarget(chat_id, int(source.thread_id), topic).encode()

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self.failure = None
        if self.gate.closed:
            self.gate = self._new_gate()
        while True:
            try:
                await self._open()
            except FatalPlatformError as exc:
                await self._close()
                self.failure = str(exc)
                raise
            except asyncio.CancelledError:
                await self._close()
                raise
            except Exception as exc:
                await self._close()
                if self._stopping:
                    return
                delay = self.backoff.next()
                reason = describe(exc)
                log.warning("Telegram: cannot connect (%s); retrying in %.1fs", reason, delay)
                self.report("reconnecting", reason, delay)
                await asyncio.sleep(delay)
                continue
            self.backoff.reset()
            return

    async def stop(self) -> None:
        """Stop polling, hand on or keep every fetched update, then disconnect."""
        self._stopping = True
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
        app = self.app
        if app is not None:
            # The updater confirms what it fetched; the application then handles everything
            # still queued (our handler defers it now), so nothing fetched is lost.
            await self._stop_updater(app)
            if app.running:
                try:
                    await app.stop()
                except Exception:
                    log.warning("stopping the Telegram application failed", exc_info=True)
        await self.inbound.drain()
        await self.ledger.flush()
        for turn in list(self._turns):
            turn.cancel()
        await self.gate.aclose()
        await self._close()
        self.report("stopped")

    def _build(self) -> Application:  # type: ignore[type-arg]
        s = self.settings
        builder = Application.builder().token(s.token)
        if s.base_url:
            builder = builder.base_url(s.base_url)
        if s.base_file_url:
            builder = builder.base_file_url(s.base_file_url)
        poll_request = _PollRequest(
            self._on_unauthorized,
            connection_pool_size=2,
            read_timeout=10.0,
            write_timeout=10.0,
            connect_timeout=10.0,
            pool_timeout=5.0,
        )
        app = (
            builder.get_updates_request(poll_request)
            .connect_timeout(10.0)
            .read_timeout(CALL_TIMEOUT)
            .write_timeout(CALL_TIMEOUT)
            .pool_timeout(5.0)
            .job_queue(None)
            .build()
        )
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_handler_error)
        return app

    async def _open(self) -> None:
        app = self._build()
        self.app = app
        try:
            await app.initialize()
        except InvalidToken:
            raise FatalPlatformError(INVALID_TOKEN) from None
        bot = app.bot
        self.me = BotIdentity(bot.id, bot.username)
        self.transport = TelegramTransport(bot)
        self.inbound.bind(bot, self.me)
        deferred = await self.ledger.load(self._store(), bot.id)
        await self._sync_commands()
        if self.ledger.skip_upto:
            # Confirm to Telegram what was handled before the restart (offset = last + 1).
            await bot.get_updates(offset=self.ledger.skip_upto + 1, timeout=0, limit=1)
        await app.start()
        for data in deferred:
            try:
                update = Update.de_json(data, bot)
            except Exception:
                log.warning("dropping an unreadable deferred Telegram update")
                continue
            if update is not None:
                self.inbound.accept(update)
        if deferred:
            await self.ledger.clear_deferred()
        await self._start_polling(app)
        log.info("Telegram connected as @%s", self.me.username)
        self.report("connected", f"@{self.me.username}")

    async def _start_polling(self, app: Application) -> None:  # type: ignore[type-arg]
        assert app.updater is not None
        await app.updater.start_polling(
            # PTB types it int | timedelta but sends the number as is: a float works.
            timeout=self.settings.poll_timeout,  # type: ignore[arg-type]
            allowed_updates=ALLOWED_UPDATES,
            error_callback=self._on_poll_error,
        )

    @staticmethod
    async def _stop_updater(app: Application) -> None:  # type: ignore[type-arg]
        updater = app.updater
        if updater is not None and updater.running:
            try:
                await updater.stop()
            except Exception:  # the polling task may have died of its own error
                log.debug("stopping the Telegram updater failed", exc_info=True)

    async def _close(self) -> None:
        """Release everything of the current connection, whatever state it reached."""
        app, self.app = self.app, None
        if app is None:
            return
        await self._stop_updater(app)
        with contextlib.suppress(Exception):
            if app.running:
                await app.stop()
        with contextlib.suppress(Exception):
            await app.shutdown()
        with contextlib.suppress(Exception):
            await app.bot.shutdown()  # after a failed initialize() the app does not do it

    # -- reconnecting --------------------------------------------------------------
    def _on_poll_error(self, exc: TelegramError) -> None:
        """PTB's polling hit an error: take over with our own backoff (PTB's caps at 30 s)."""
        if self._stopping or self.failure or (self._recovery and not self._recovery.done()):
            return
        self._recovery = asyncio.get_running_loop().create_task(
            self._recover(exc), name="telegram-reconnect"
        )

    async def _recover(self, exc: BaseException) -> None:
        app = self.app
        loop = asyncio.get_running_loop()
        reason = describe(exc)
        while app is not None and app is self.app and not self._stopping and not self.failure:
            delay = self.backoff.next()
            log.warning("Telegram polling failed (%s); reconnecting in %.1fs", reason, delay)
            self.report("reconnecting", reason, delay)
            resume_at = loop.time() + delay
            await self._stop_updater(app)
            await asyncio.sleep(max(0.0, resume_at - loop.time()))
            if self._stopping or self.failure:
                return
            try:
                await app.bot.get_me()  # a quiet probe before PTB's noisier bootstrap
                await self._start_polling(app)
            except InvalidToken:
                self._fail(INVALID_TOKEN)
                return
            except Exception as err:
                reason = describe(err)
                continue
            self.backoff.reset()
            log.info("Telegram reconnected")
            self.report("connected", f"@{self.me.username}" if self.me else "")
            return

    def _on_unauthorized(self) -> None:
        if not self._stopping and not self.failure:
            self._fail(INVALID_TOKEN)

    def _fail(self, reason: str) -> None:
        self.failure = reason
        log.error("Telegram: %s", reason)
        self.report("failed", reason)
        app = self.app
        if app is not None:
            self._background.spawn(self._stop_updater(app), name="telegram-stop-updater")

    # -- inbound -------------------------------------------------------------------
    async def _on_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            return
        if self.ledger.handled_before(update.update_id):
            log.debug("skipping Telegram update %s, handled before a restart", update.update_id)
            return
        self.ledger.begin(update.update_id)
        self.inbound.accept(update)

    async def _deliver(self, event: MessageEvent, updates: list[Update]) -> None:
        if self._stopping or self._runner_stopping():
            # Telegram already considers these delivered: keep them for the next start.
            self.ledger.deferred.extend(u.to_dict() for u in updates)
            return
        if event.text.split("@", 1)[0].split(maxsplit=1)[:1] == ["/start"]:
            # Telegram's "Start" button; unless a feature defines /start, show the help.
            if self.bound and self.host.commands.resolve("start") is None:
                event.text = "/help"
        await self.dispatch(event)

    def _finished(self, update_ids: Iterable[int]) -> None:
        self.ledger.finish(update_ids)

    async def _on_handler_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling a Telegram update", exc_info=context.error)

    def _runner_stopping(self) -> bool:
        # While the gateway stops it drops what it is handed: keep updates for next start.
        return self.bound and self.host.stopping

    def _store(self) -> SessionStore | None:
        return self.host.store if self.bound else None

    async def _sync_commands(self) -> None:
        if not self.bound or self.app is None:
            return
        registry = self.host.commands
        commands = bot_commands(registry.specs(self.name))
        try:
            await self.app.bot.set_my_commands(commands)
        except TelegramError as exc:
            log.warning("could not set the Telegram command menu: %s", exc)

    # -- outbound ------------------------------------------------------------------
    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        if self.transport is None:
            return super().begin_turn(source)
        mode = self.settings.progress_mode(self.config.display)
        inner = StreamingTurn(
            self.transport,
            self.target_for(source),
            self.gate,
            tool_progress=mode,
            edit_interval=self.settings.edit_interval,
        )
        turn = TypingTurn(
            inner,
            lambda: self.send_typing(source),
            TYPING_EVERY,
            name=f"telegram-typing:{source.chat_id}",
        )
        self._turns.add(turn)
        return turn

    async def send(self, source: SessionSource, text: str) -> None:
        transport = self.transport
        if transport is None:
            raise RuntimeError("Telegram is not connected")
        chat = self.target_for(source)
        for chunk in split_message(text, TELEGRAM_LIMIT, measure=utf16_len):
            await self.gate.run(chat, functools.partial(transport.send_text, chat, chunk))

    async def send_typing(self, source: SessionSource) -> None:
        if self.transport is not None:
            await asyncio.wait_for(self.transport.send_typing(self.target_for(source)), 10)
