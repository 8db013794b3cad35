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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import Application
from telegram.request import HTTPXRequest

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config
from hermes_gateway.delivery import (
    TELEGRAM_LIMIT,
    RateGate,
    split_message,
    utf16_len,
)
from hermes_gateway.delivery.answer_turn import AnswerTurns
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
            retry=self._retry_later,
        )
        self.ledger = UpdateLedger()
        self.backoff = Backoff(self.settings.reconnect_initial, self.settings.reconnect_cap)
        self.failure: str | None = None
        """Why the adapter gave up for good (invalid token), if it did."""
        self._stopping = False
        self._poller: asyncio.Task[None] | None = None
        self._offset: int | None = None
        """getUpdates' next offset: everything below it is journaled or handled."""
        # Typing, no uploads (MEDIA: lines are not taken out of a Telegram answer).
        self.answers = AnswerTurns(
            self.name,
            config.paths.home,
            typing=self._typing,
            typing_every=TYPING_EVERY,
            pacing=self.settings,
            display=config.display,
        )

    def _new_gate(self) -> RateGate:
        s = self.settings
        return RateGate(s.rate_interval, global_per_second=s.global_rate or None)

    # -- where answers go ----------------------------------------------------------
    @property
    def home_source(self) -> SessionSource | None:
        """TELEGRAM_HOME_CHANNEL as a source (``chat`` or ``chat:topic``), for deliveries."""
        raw = self.settings.home
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
        app = self.app
        if app is not None:
            # Nothing is confirmed to Telegram that the gateway has not stored: what is in
            # flight is finished below, the rest Telegram sends again at the next start.
            await self._stop_polling()
            if app.running:
                try:
                    await app.stop()
                except Exception:
                    log.warning("stopping the Telegram application failed", exc_info=True)
        await self.inbound.drain()
        await self.ledger.flush()
        self.answers.cancel()
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
            .updater(None)  # we poll ourselves: see _poll
            .build()
        )
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
        journaled = await self.ledger.load(self._store(), bot.id)
        await self._sync_commands()
        self._offset = self.ledger.skip_upto + 1 if self.ledger.skip_upto else None
        if self._offset is not None:
            # Confirm to Telegram what was handled before the restart (offset = last + 1).
            await bot.get_updates(offset=self._offset, timeout=0, limit=1)
        await app.start()
        for data in journaled:  # what a crash left half-handled: the inbox drops repeats
            try:
                update = Update.de_json(data, bot)
            except Exception:
                log.warning("dropping an unreadable journaled Telegram update")
                continue
            if update is not None:
                self._on_update(update)
        await self._start_polling(app)
        log.info("Telegram connected as @%s", self.me.username)
        self.report("connected", f"@{self.me.username}")

    async def _start_polling(self, app: Application) -> None:  # type: ignore[type-arg]
        self._poller = asyncio.get_running_loop().create_task(
            self._poll(app.bot), name="telegram-poll"
        )

    async def _stop_polling(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None and not poller.done():
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    async def _poll(self, bot: Bot) -> None:
        """Long-poll getUpdates, confirming only what the gateway has stored.

        Telegram takes an update as confirmed once getUpdates is called with a higher
        offset. PTB's own updater asks for the next batch (confirming the last) whether or
        not its updates were kept anywhere; here each batch is written to the ledger's
        journal first, and a batch that cannot be written is not confirmed (the poll backs
        off and Telegram sends it again). See :mod:`.state`.
        """
        failing = False
        while not self._stopping and not self.failure:
            try:
                updates = await bot.get_updates(
                    offset=self._offset,
                    # PTB types it int; Telegram takes the number as sent (tests use < 1 s).
                    timeout=self.settings.poll_timeout,  # type: ignore[arg-type]
                    allowed_updates=ALLOWED_UPDATES,
                    read_timeout=self.settings.poll_timeout + 10.0,
                )
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                self._fail(INVALID_TOKEN)
                return
            except Exception as exc:
                if self._stopping or self.failure:
                    return
                failing = True
                delay = self.backoff.next()
                reason = describe(exc)
                log.warning("Telegram polling failed (%s); reconnecting in %.1fs", reason, delay)
                self.report("reconnecting", reason, delay)
                await asyncio.sleep(delay)
                continue
            if failing:
                failing = False
                self.backoff.reset()
                log.info("Telegram reconnected")
                self.report("connected", f"@{self.me.username}" if self.me else "")
            fresh = [u for u in updates if self.ledger.wants(u.update_id)]
            try:
                await self.ledger.journal([u.to_dict() for u in fresh])
            except Exception as exc:  # disk full, read-only database...: confirm nothing
                failing = True
                delay = self.backoff.next()
                log.error(
                    "Telegram: cannot store incoming updates (%s); retry in %.1fs", exc, delay
                )
                self.report("reconnecting", f"cannot store incoming updates: {exc}", delay)
                await asyncio.sleep(delay)
                continue
            for update in fresh:
                self._on_update(update)
            if updates:
                self._offset = max(u.update_id for u in updates) + 1

    async def _close(self) -> None:
        """Release everything of the current connection, whatever state it reached."""
        app, self.app = self.app, None
        if app is None:
            return
        await self._stop_polling()
        with contextlib.suppress(Exception):
            if app.running:
                await app.stop()
        with contextlib.suppress(Exception):
            await app.shutdown()
        with contextlib.suppress(Exception):
            await app.bot.shutdown()  # after a failed initialize() the app does not do it

    def _on_unauthorized(self) -> None:
        if not self._stopping and not self.failure:
            self._fail(INVALID_TOKEN)

    def _fail(self, reason: str) -> None:
        self.failure = reason
        log.error("Telegram: %s", reason)
        self.report("failed", reason)
        if self._poller is not None:
            self._background.spawn(self._stop_polling(), name="telegram-stop-polling")

    # -- inbound -------------------------------------------------------------------
    def _on_update(self, update: Update) -> None:
        if self.ledger.handled_before(update.update_id):
            log.debug("skipping Telegram update %s, handled before a restart", update.update_id)
            return
        self.ledger.begin(update.update_id)
        self.inbound.accept(update)

    async def _deliver(self, event: MessageEvent, updates: list[Update]) -> None:
        # Also while the gateway stops: it stores the message and answers it after the next
        # start (IntakeError if it cannot store it: the update stays journaled).
        if event.text.split("@", 1)[0].split(maxsplit=1)[:1] == ["/start"]:
            # Telegram's "Start" button; unless a feature defines /start, show the help.
            if self.bound and self.host.commands.resolve("start") is None:
                event.text = "/help"
        await self.dispatch(event)

    def _finished(self, update_ids: Iterable[int]) -> None:
        self.ledger.finish(update_ids)

    def _retry_later(self, update_ids: Iterable[int]) -> None:
        """The gateway could not store these: they stay journaled and are tried again."""
        self.ledger.retry(update_ids)
        if not self._stopping:
            self._background.spawn(
                self._retry_after(list(update_ids), self.backoff.next()), name="telegram-retry"
            )

    async def _retry_after(self, update_ids: list[int], delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping or self.ledger.store is None or self.app is None:
            return
        bot = self.app.bot
        for data in await self.ledger.load_some(update_ids):
            update = Update.de_json(data, bot)
            if update is not None:
                self._on_update(update)

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
        return self.answers.streamed(self.transport, self.gate, source, self.target_for(source))

    async def send(self, source: SessionSource, text: str) -> None:
        transport = self.transport
        if transport is None:
            raise RuntimeError("Telegram is not connected")
        chat = self.target_for(source)
        for chunk in split_message(text, TELEGRAM_LIMIT, measure=utf16_len):
            await self.gate.run(chat, functools.partial(transport.send_text, chat, chunk))

    async def send_typing(self, source: SessionSource) -> None:
        await self._typing(self.target_for(source))

    async def _typing(self, chat: str) -> None:
        if self.transport is not None:
            await asyncio.wait_for(self.transport.send_typing(chat), 10)
