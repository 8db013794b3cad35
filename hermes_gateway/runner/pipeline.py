"""The gateway's pipeline: auth -> command? -> session -> agent turn -> delivery.

Every platform, the local terminal included, hands its messages to :meth:`GatewayRunner.handle`
(adapters through their :class:`~hermes_gateway.hosts.AdapterHost`). Commands run at once,
even while the agent is busy in that chat; ordinary messages become agent turns, one at a time
per session. Everything observable is published on the bus.

The runner composes the parts that each do one job: the session registry
(:mod:`.sessions`), adapter supervision (:mod:`.supervisor`), the turn sink (:mod:`.turns`)
and request/response turns (:mod:`.requests`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from hermes_gateway import events as ev
from hermes_gateway.access.policy import hash_id
from hermes_gateway.agent.loop import Agent, TurnOptions, TurnResult
from hermes_gateway.agent.titles import suggest_title
from hermes_gateway.agent.tools.base import ApprovalRequest, ToolContext
from hermes_gateway.agent.tools.boundary import boundary_for
from hermes_gateway.backoff import Backoff
from hermes_gateway.commands.registry import (
    CommandContext,
    CommandGate,
    CommandRegistry,
    CommandResult,
    parse_command,
)
from hermes_gateway.config import BusyMode, Config, ModelConfig
from hermes_gateway.delivery.router import DeliveryRouter
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import (
    NULL_DELIVERY,
    IntakeError,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.platforms.web_routes import WebRoutes
from hermes_gateway.redact import redact
from hermes_gateway.runner.busy_ack import BusyAcks
from hermes_gateway.runner.command_guard import CommandGuard
from hermes_gateway.runner.context import Compressed, ContextKeeper
from hermes_gateway.runner.hosts import RunnerAdapterHost
from hermes_gateway.runner.requests import RequestTurns
from hermes_gateway.runner.sessions import NOTICE_KV, SessionRegistry, SessionRuntime
from hermes_gateway.runner.supervisor import PlatformStats, PlatformSupervisor
from hermes_gateway.runner.turns import TurnSink
from hermes_gateway.session_scope import scoped
from hermes_gateway.store import NoteKind, SessionRecord, SessionStore, StoredMessage
from hermes_gateway.store.inbox import Inbox, InboxRow
from hermes_gateway.tasks import TaskSet
from hermes_gateway.text import clean_surrogates, clip

__all__ = ["GatewayRunner"]

log = logging.getLogger(__name__)

TURN_BUDGET = 0.9
"""Share of the window a turn's own tool results may fill before the model is sent
shortened copies of them (what is left is for the answer)."""
RESET_WATCH_SECONDS = 60.0
"""How often the watcher looks for sessions their reset policy has expired."""
RESTART_NOTE = "(restarting — I'll finish this answer as soon as I'm back)"
NOTIFY_TEXT = (
    "Sorry, I restarted before I could answer your message from {when}. "
    "Please send it again if you still need an answer."
)

Enqueued = Literal[
    "started", "steered", "queued", "interrupted", "held", "stored", "duplicate", "empty"
]
"""What became of a message given to its session (``/queue`` and ``/steer`` say it)."""

Authorizer = Callable[[MessageEvent], Awaitable[bool]]
Approver = Callable[[ApprovalRequest], Awaitable[bool]]


class GatewayRunner:
    """The pipeline, and the one object that implements the gateway's host protocols."""

    def __init__(
        self,
        config: Config,
        store: SessionStore,
        bus: ev.EventBus,
        agent: Agent,
        commands: CommandRegistry,
        *,
        authorize: Authorizer | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.agent = agent
        self.commands = commands
        self.authorize = authorize
        self.registry = SessionRegistry(config, store, bus)
        self.supervisor = PlatformSupervisor(bus, on_first_connect=self._first_connect)
        self.started_at = time.time()
        """Inbox rows received before it are the last run's to resume; later ones are ours."""
        self._awaiting_resume: dict[str, list[MessageEvent]] = {}
        """Per platform with messages the last run left: this run's messages, held until
        those are queued, so a chat's older messages are answered first, in order."""
        self.inbox = Inbox(store)
        self.command_guard = CommandGuard(store, bus, self._send, self._dropped)
        """Commands recorded by platform message id before they run: a repeat never runs."""
        self.context = ContextKeeper(self)
        """Each session's size against its model's window; compression (and /compress)."""
        self.requests = RequestTurns(self)
        self.run_request = self.requests.run
        """One agent turn whose caller waits for the answer (see :class:`RequestTurns`)."""
        self.router = DeliveryRouter(config, self.supervisor.adapters)
        """Delivers to chats by target (cron results, webhook answers)."""
        self.web_routes = WebRoutes()
        """Webhook routes of platforms (SMS, WhatsApp), served by the API server when it runs."""
        self.busy_acks = BusyAcks(config.gateway)
        self._turn_counter = 0
        self._cwd = Path(config.agent.cwd).expanduser()
        self._background = TaskSet()
        self.approver: Callable[[SessionRuntime], Approver] | None = None
        """Builds ``ToolContext.approve`` for a turn (set by the approvals feature)."""
        self.command_gate: CommandGate | None = None
        """Asked before each known command runs (set by the hooks feature)."""

    # --- views kept for callers that read the parts through the runner ------------------

    @property
    def background(self) -> list[str]:
        """Names of the runner's background tasks still running (titles, resumes, ...)."""
        return self._background.names()

    @property
    def stopping(self) -> bool:
        """True once stop() began: adapters keep new updates for the next start."""
        return self.supervisor.stopping

    @property
    def sessions(self) -> dict[str, SessionRuntime]:
        return self.registry.sessions

    @property
    def adapters(self) -> dict[str, PlatformAdapter]:
        return self.supervisor.adapters

    @property
    def platform_state(self) -> Mapping[str, ev.PlatformStatus]:
        return self.supervisor.state

    @property
    def stats(self) -> dict[str, PlatformStats]:
        return self.supervisor.stats

    @property
    def paused_sessions(self) -> set[str]:
        return self.registry.paused

    @property
    def paused_platforms(self) -> set[str]:
        return self.supervisor.paused

    def stats_for(self, platform: str) -> PlatformStats:
        return self.supervisor.stats_for(platform)

    # --- platforms --------------------------------------------------------------------

    def add_adapter(self, adapter: PlatformAdapter) -> None:
        self.supervisor.add(adapter, lambda name: RunnerAdapterHost(self, name))

    async def start(self) -> None:
        """Start every adapter in its own supervised task; one failing never stops another."""
        self.started_at = time.time()
        for row in await self.inbox.open_rows():
            self._awaiting_resume.setdefault(row.platform, [])
        self._background.spawn(self.inbox.prune(), name="inbox-prune")
        self._background.spawn(self.command_guard.prune(), name="command-receipts-prune")
        self._background.spawn(self._reset_watcher(), name="session-reset-watcher")
        await self.supervisor.start()

    async def _reset_watcher(self) -> None:
        """Reset expired sessions in the background (the same check every path makes), so
        the control room's list shows them ended even if the chat never writes again."""
        while True:
            try:
                await self.registry.expire_due()
                evicted = self.registry.evict_idle()
                if evicted:
                    log.debug("dropped %d idle session(s) from memory", evicted)
            except Exception:
                log.exception("session reset watcher failed; trying again later")
            await asyncio.sleep(RESET_WATCH_SECONDS)

    async def _tell_reset(self, rt: SessionRuntime) -> None:
        """Tell the chat its session expired (once), before anything else is said there."""
        text, rt.reset_notice = rt.reset_notice, None
        if text:
            await self._send(rt.source, text, "a session reset notice")
            await self.store.kv_delete(NOTICE_KV + rt.key)  # told: at most once after this

    async def stop(self) -> None:
        """Drain: take no new work, let running answers finish for up to
        ``gateway.drain_timeout`` seconds, then interrupt the rest. What is left (queued
        messages, interrupted answers) stays in the inbox and is answered at the next start.
        """
        self.supervisor.cancel()  # from now on handle() only stores what arrives
        for rt in self.registry.sessions.values():
            rt.pending.clear()  # still pending in the inbox
            rt.steering.clear()
        turns = self.registry.busy_tasks()
        if turns:
            log.info(
                "waiting up to %.0fs for %d answer(s)",
                self.config.gateway.drain_timeout,
                len(turns),
            )
            await asyncio.wait(turns, timeout=self.config.gateway.drain_timeout)
        for rt in self.registry.sessions.values():
            if rt.busy:
                rt.stop_reason = "shutdown"
                rt.interrupt.set()
        turns = self.registry.busy_tasks()
        if turns:
            await asyncio.wait(turns, timeout=5)
        await self.supervisor.stop_adapters()
        await self._background.cancel_all()
        await self.agent.pool.aclose()

    # --- the pipeline -----------------------------------------------------------------

    async def handle(self, event: MessageEvent) -> None:
        """Entry point for every inbound message from every platform."""
        event.text = clean_surrogates(event.text)  # or it poisons the session's history
        if not event.from_operator:  # a group's participant has a session of their own
            event.source = scoped(self.config, event.source)
        if not event.mentioned:
            self._dropped(event, "not_mentioned")  # a group message not addressed to the bot
            return
        if self.authorize is not None and not await self.authorize(event):
            self._dropped(event, "unauthorized")
            self.bus.publish(
                ev.AccessDenied(
                    session_key=event.session_key,
                    platform=event.source.platform,
                    user=hash_id(event.source.user_id),
                )
            )
            return
        if not event.from_operator:
            self.supervisor.received(event.source.platform)
        if event.is_command:
            parsed = parse_command(event.text)
            if parsed is not None:
                await self._run_command(event, *parsed)
                return
        if not event.text.strip() and not event.media:
            self._dropped(event, "empty")
            return
        if event.from_operator:
            await self.operator_say(event.source, event.text)
            return
        if event.inbox_id is None:
            if not await self._store_inbound(event):
                return
        if self.stopping:
            return  # stored: answered after the next start
        held = self._awaiting_resume.get(event.source.platform)
        if held is not None:
            held.append(event)  # stored; queued once the last run's are (see _resume)
            return
        outcome = await self._enqueue(event)
        adapter = self.supervisor.adapters.get(event.source.platform)
        if adapter is None or not adapter.acknowledges_busy:
            return
        ack = self.busy_acks.text_for(event.session_key, outcome)
        if ack:  # not awaited: the platform's next update need not wait for this send
            self._background.spawn(
                self._send(event.source, ack, "a busy acknowledgement"),
                name=f"busy-ack:{event.session_key}",
            )

    async def _store_inbound(self, event: MessageEvent) -> bool:
        """Store the message before its platform is told it arrived; False if a duplicate.

        Raises:
            IntakeError: it could not be stored; the adapter must not confirm it.
        """
        try:
            event.inbox_id = await self.inbox.add(event)
        except Exception as exc:
            log.error("could not store an inbound %s message: %s", event.source.platform, exc)
            self.bus.publish(
                ev.Notice(
                    text=f"Cannot store incoming messages ({exc}); {event.source.platform} "
                    "will deliver them again once the database is writable.",
                    level="error",
                    session_key=event.session_key,
                )
            )
            raise IntakeError(str(exc)) from exc
        if event.inbox_id is None:
            self._dropped(event, "duplicate")  # redelivered by the platform: already stored
            return False
        return True

    async def _enqueue(self, event: MessageEvent, mode: BusyMode | None = None) -> Enqueued:
        """Give a stored message to its session: a turn now, or, while one runs, as ``mode``
        (default ``gateway.busy_mode``) says: steered into it, queued after it, or it is
        interrupted and answered anew. A paused chat holds it for the operator."""
        rt = await self.registry.runtime(event.source)
        if rt.reset_notice:
            await self._tell_reset(rt)
        if rt.key in self.registry.paused or event.source.platform in self.supervisor.paused:
            await self._hold(rt, event)
            return "held"
        if not rt.busy:
            rt.pending.append(event)
            self.start_worker(rt)
            return "started"
        mode = mode or self.config.gateway.busy_mode
        if mode == "steer" and event.text.strip() and not event.media:
            rt.steering.append(event)  # files cannot join a turn: they wait for the next
            return "steered"
        rt.pending.append(event)
        if mode == "interrupt":
            rt.stop_reason = rt.stop_reason or "superseded"
            rt.interrupt.set()
            return "interrupted"
        return "queued"

    async def submit(self, event: MessageEvent, mode: BusyMode) -> Enqueued:
        """A message a command carries (``/queue``, ``/steer``): stored like any message,
        then given to its session as ``mode`` says whatever ``gateway.busy_mode`` is."""
        if not event.text.strip() and not event.media:
            return "empty"
        if event.inbox_id is None and not await self._store_inbound(event):
            return "duplicate"
        if self.stopping:
            return "stored"  # answered after the next start
        return await self._enqueue(event, mode)

    def _take_steering(self, rt: SessionRuntime, taken: list[int]) -> list[str]:
        """What the chat said during the running turn, for its next step (see ``steer`` of
        :meth:`Agent.run_turn`); their inbox rows are answered with the turn."""
        events, rt.steering = rt.steering, []
        for event in events:
            if event.inbox_id is not None:
                taken.append(event.inbox_id)
            self.publish_received(rt, event.text, event.source.user_name)
        if events:
            self.registry.touched(rt)
        return [event.text for event in events]

    @staticmethod
    def _unsteer(rt: SessionRuntime) -> None:
        """Steered messages the turn ended before taking: the next turn answers them."""
        if rt.steering:
            waiting = [*rt.pending, *rt.steering]
            rt.pending = sorted(waiting, key=lambda e: e.received_at)
            rt.steering = []

    def _dropped(self, event: MessageEvent, reason: str) -> None:
        self.bus.publish(
            ev.MessageDropped(
                session_key=event.session_key,
                platform=event.source.platform,
                reason=reason,  # type: ignore[arg-type]
            )
        )

    async def _run_command(self, event: MessageEvent, name: str, args: str) -> None:
        """Run a command once per platform message (:class:`CommandGuard`), reply, keep it
        (unrecorded when the store cannot take its receipt: see ``CommandGuard.admit``)."""
        if not await self.command_guard.admit(event, name):
            return  # a repeat the platform delivered again: never run twice
        delivered = False  # an exception leaves the receipt: a repeat is told, not run
        try:
            delivered = await self._command(event, name, args)
        finally:
            await self.command_guard.finished(event, delivered=delivered)

    async def _command(self, event: MessageEvent, name: str, args: str) -> bool:
        """The command itself; False if its reply could not be delivered."""
        platform = event.source.platform
        spec = self.commands.resolve(name)
        verdict = None
        where = "local" if event.from_operator else platform
        if spec is not None and self.command_gate is not None and spec.allowed_on(where):
            verdict = await self.command_gate(event, spec.name, name, args)
            if verdict is not None and verdict.action == "rewrite":
                name, args, verdict = verdict.command, verdict.args, None
                spec = self.commands.resolve(name)
        if verdict is not None:
            result = CommandResult(verdict.text, ok=verdict.action == "handled")
        elif spec is None:
            hints = self.commands.suggest(name, platform)
            hint = f" Did you mean {', '.join('/' + h for h in hints)}?" if hints else ""
            result = CommandResult(f"Unknown command /{name}.{hint} Try /help.", ok=False)
        elif not spec.allowed_on(where):
            result = CommandResult(f"/{spec.name} is only available in the local terminal.", False)
        else:
            try:
                result = await spec.handler(CommandContext(self, event, spec.name, args))
            except Exception as exc:
                log.exception("command /%s failed", name)
                result = CommandResult(f"/{name} failed: {exc}", ok=False)
        self.bus.publish(
            ev.MessageReceived(
                session_key=event.session_key,
                session_id=None,
                platform=platform,
                text=event.text,
                user_name=event.source.user_name,
                is_command=True,
            )
        )
        self.bus.publish(
            ev.CommandReplied(
                session_key=event.session_key,
                command=spec.name if spec else name,
                text=result.text,
                ok=result.ok,
                action=result.action,
                invocation=event.text.strip(),
            )
        )
        if result.action is None and result.text:
            await self._keep_command(event, result)
        if result.text and not event.from_operator:
            await self.command_guard.replying(event, result.text)
            return await self._send(event.source, result.text, f"/{name} reply")
        return True

    async def _keep_command(self, event: MessageEvent, result: CommandResult) -> None:
        """Store a command and its reply in the chat's session (the one active after it ran,
        as the screen shows it there); a chat without a session keeps nothing."""
        rt = self.registry.sessions.get(event.session_key)
        record = rt.record if rt is not None else None
        if record is None:
            record = await self.store.get_active_session(event.session_key)
        if record is not None:
            meta = {"invocation": clip(event.text.strip(), 2000), "ok": result.ok}
            await self.keep_note(record.id, "command", result.text, meta)

    async def _send(self, source: SessionSource, text: str, what: str) -> bool:
        """Send a whole message to a chat, counting it; False (and logged) if it failed."""
        adapter = self.supervisor.adapters.get(source.platform)
        if adapter is None:
            return False
        try:
            await adapter.send(source, text)
        except Exception as exc:
            self.supervisor.error(source.platform, str(exc) or type(exc).__name__)
            log.exception("could not deliver %s on %s", what, source.platform)
            return False
        self.supervisor.sent(source.platform)
        return True

    # --- the operator stepping in ------------------------------------------------------

    async def operator_say(self, source: SessionSource, text: str) -> None:
        """Send ``text`` into a chat as the bot, stored as from the operator."""
        rt = await self.registry.runtime(source)
        if rt.reset_notice:
            await self._tell_reset(rt)
        message = StoredMessage(role="assistant", content=text, meta={"from_operator": True})
        await self.store.append_messages(rt.record.id, [message])
        self.registry.touched(rt)
        if rt.history is not None:
            rt.history.append(message.to_openai())
        self.bus.publish(
            ev.MessageReceived(
                session_key=rt.key,
                session_id=rt.record.id,
                platform=source.platform,
                text=text,
                user_name="operator",
                from_operator=True,
                message_id=message.id,
            )
        )
        if source.platform != "local" and source.platform in self.supervisor.adapters:
            if not await self._send(rt.source, text, "the operator's message"):
                detail = self.supervisor.stats_for(source.platform).last_error
                self.bus.publish(
                    ev.Notice(
                        text=f"Could not deliver: {detail}", level="error", session_key=rt.key
                    )
                )

    def set_session_paused(self, session_key: str, paused: bool) -> None:
        """Pause the agent in one chat (the operator answers by hand) or hand it back."""
        self.registry.set_paused(session_key, paused)

    def set_platform_paused(self, platform: str, paused: bool) -> None:
        """Stop answering a whole platform; its messages are still stored and shown."""
        if paused:
            for key, rt in self.registry.sessions.items():
                if rt.source.platform == platform:
                    self.registry.interrupt(key)
        self.supervisor.set_paused(platform, paused)

    async def _hold(self, rt: SessionRuntime, event: MessageEvent) -> None:
        """Store and show a message in a paused chat without waking the agent."""
        user = StoredMessage(role="user", content=event.text)
        await self.store.append_messages(
            rt.record.id, [user], also=Inbox.marking([event.inbox_id], "done")
        )
        self.registry.touched(rt)
        if rt.history is not None:
            rt.history.append(user.to_openai())
        self.publish_received(rt, event.text, event.source.user_name, user.id)

    def publish_received(
        self,
        rt: SessionRuntime,
        text: str,
        user_name: str | None,
        message_id: int | None = None,
    ) -> None:
        self.bus.publish(
            ev.MessageReceived(
                session_key=rt.key,
                session_id=rt.record.id,
                platform=rt.source.platform,
                text=text,
                user_name=user_name,
                message_id=message_id,
            )
        )

    async def keep_note(
        self, session_id: str, kind: NoteKind, text: str, meta: dict[str, Any] | None = None
    ) -> None:
        """Store what the screen showed besides messages, so a reopened chat shows it again.

        Best effort: a note that cannot be written (disk full) is logged, never raised, since
        what it records was already shown and sent.
        """
        try:
            await self.store.add_note(session_id, kind, text, meta)
        except Exception as exc:
            log.warning("could not keep a transcript note in %s: %s", session_id, exc)

    async def _turn_failed(self, rt: SessionRuntime, exc: Exception) -> None:
        text = f"The turn failed: {redact(str(exc))}"
        self.bus.publish(ev.Notice(text=text, level="error", session_key=rt.key))
        await self.keep_note(rt.record.id, "notice", text, {"level": "error"})

    async def rewind_last_turn(self, source: SessionSource) -> list[StoredMessage]:
        """Remove the chat's last exchange (``/undo``, ``/retry``) from the store and screens.

        Returns the removed messages (``[]`` if there was none).
        """
        rt = await self.registry.runtime(source)
        removed = await self.store.pop_last_turn(rt.record.id)
        rt.history = None
        if removed and removed[0].id is not None:
            self.bus.publish(
                ev.TranscriptRewound(
                    session_key=rt.key, session_id=rt.record.id, from_message_id=removed[0].id
                )
            )
        return removed

    # --- sessions (the registry's, offered to commands through CommandHost) -------------

    def help_text(self, platform: str) -> str:
        return self.commands.help_text(platform)

    async def runtime(self, source: SessionSource) -> SessionRuntime:
        rt = await self.registry.runtime(source)
        if rt.reset_notice:
            await self._tell_reset(rt)
        return rt

    def publish_session(self, rt: SessionRuntime, reason: str) -> None:
        self.registry.publish(rt, reason)

    async def reset_session(self, source: SessionSource) -> SessionRecord:
        return await self.registry.reset(source)

    async def activate_session(self, source: SessionSource, record: SessionRecord) -> None:
        await self.registry.activate(source, record)

    def interrupt(self, session_key: str, *, drop_pending: bool = True) -> bool:
        return self.registry.interrupt(session_key, drop_pending=drop_pending)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        await self.registry.wait_idle(timeout)

    def model_for(self, rt: SessionRuntime) -> ModelConfig:
        return self.registry.model_for(rt)

    async def compress_session(self, rt: SessionRuntime) -> Compressed:
        return await self.context.compress(rt)

    async def context_use(self, rt: SessionRuntime) -> tuple[int, int]:
        used = self.context.measure(rt, await self.registry.history(rt))
        return used, await self.context.window(self.registry.model_for(rt))

    def system_prompt(self, rt: SessionRuntime) -> str:
        return self.registry.system_prompt(rt)

    # --- resuming what a crash or a stop left -------------------------------------------

    def _first_connect(self, platform: str) -> None:
        self._background.spawn(self._resume_then_release(platform), name=f"resume:{platform}")

    async def _resume_then_release(self, platform: str) -> None:
        """Resume what the last run left, then queue what this run held back meanwhile."""
        try:
            await self._resume(platform)
        finally:
            for event in self._awaiting_resume.pop(platform, []):
                await self._enqueue(event)

    async def _resume(self, platform: str) -> None:
        """Answer (or account for) the platform's stored messages that have no answer yet.

        Runs once per start, when the platform first connects, so answers can be delivered.
        Each inbox row is handled exactly once: it ends ``done`` however it is dealt with.
        """
        rows = [
            r
            for r in await self.inbox.open_rows()
            if r.platform == platform and r.received_at < self.started_at
        ]  # later ones are this run's own, already answered live
        if not rows:
            return
        gw = self.config.gateway
        oldest_ok = time.time() - gw.resume_max_age_minutes * 60
        log.info("%s: %d message(s) left unanswered by the last run", platform, len(rows))
        taken: dict[str, list[InboxRow]] = {}
        pending: list[InboxRow] = []
        for row in rows:
            row.event.inbox_id = row.id
            answer = gw.resume_unanswered == "answer" and row.received_at >= oldest_ok
            if row.state == "answered":  # stored, maybe not delivered: deliver it again
                text = await self.inbox.last_answer(row.session_id or "")
                if text:
                    await self._send(row.event.source, text, "a stored answer")
                await self.inbox.done([row.id])
            elif not answer:
                await self._close_unanswered(row)
            elif row.state == "pending":
                pending.append(row)
            else:
                taken.setdefault(row.session_key, []).append(row)
        # Stored-but-unanswered turns first: a chat's later messages come after them.
        for group in taken.values():
            rt = await self.registry.runtime(group[0].event.source)
            if rt.record.id != group[0].session_id:  # the chat moved on (/new) meanwhile
                for row in group:
                    await self._close_unanswered(row)
                continue
            rt.resume.extend(row.id for row in group)
            if not rt.busy:
                self.start_worker(rt)
        for row in pending:
            await self._enqueue(row.event)

    async def _close_unanswered(self, row: InboxRow) -> None:
        if self.config.gateway.resume_unanswered != "drop":
            when = time.strftime("%H:%M", time.localtime(row.received_at))
            await self._send(row.event.source, NOTIFY_TEXT.format(when=when), "a restart notice")
        await self.inbox.done([row.id])

    # --- turns ------------------------------------------------------------------------

    def start_worker(self, rt: SessionRuntime) -> None:
        rt.task = asyncio.create_task(self._session_worker(rt), name=f"turns:{rt.key}")

    async def _session_worker(self, rt: SessionRuntime) -> None:
        """Answer the chat's pending messages, a batch per turn, until none are left."""
        retry = Backoff(1.0, 30.0)
        try:
            while (rt.pending or rt.resume or rt.steering) and not self.stopping:
                self._unsteer(rt)
                rt.interrupt.clear()
                rt.stop_reason = None
                if rt.resume:
                    ids, rt.resume = rt.resume, []
                    try:
                        await self.run_agent(rt, await self.context.fit(rt), inbox_ids=ids)
                    except Exception as exc:
                        log.exception("resumed turn failed in %s", rt.key)
                        await self._turn_failed(rt, exc)
                    continue
                batch, rt.pending = rt.pending, []
                try:
                    await self._turn(rt, batch)
                except _NotStored as failure:
                    # Disk full, read-only...: the messages wait (in memory and, pending, in
                    # the inbox) and are tried again, with a growing pause.
                    rt.pending[:0] = failure.batch
                    delay = retry.next()
                    log.error(
                        "cannot store a turn in %s (%s); retry in %.1fs",
                        rt.key,
                        failure.cause,
                        delay,
                    )
                    self.bus.publish(
                        ev.Notice(
                            text=f"Cannot store messages ({failure.cause}); "
                            f"retrying in {delay:.0f}s.",
                            level="error",
                            session_key=rt.key,
                        )
                    )
                    await asyncio.sleep(delay)
                    continue
                except Exception as exc:
                    log.exception("turn failed in %s", rt.key)
                    await self._turn_failed(rt, exc)
        finally:
            rt.task = None

    async def _turn(self, rt: SessionRuntime, batch: list[MessageEvent]) -> None:
        text = "\n\n".join(e.text for e in batch if e.text.strip())
        meta: dict[str, Any] = {}
        if any(e.media for e in batch):
            meta["media"] = [m.path for e in batch for m in e.media]
        user = StoredMessage(role="user", content=text, meta=meta)
        history = await self.registry.history(rt)
        ids = [e.inbox_id for e in batch if e.inbox_id is not None]
        try:
            await self.store.append_messages(
                rt.record.id, [user], also=Inbox.taking(ids, rt.record.id)
            )
        except Exception as exc:
            raise _NotStored(batch, exc) from exc
        self.registry.touched(rt)
        history.append(user.to_openai())
        self.publish_received(rt, text, batch[-1].source.user_name, user.id)
        history = await self.context.fit(rt)
        result = await self.run_agent(rt, history, inbox_ids=ids)
        if self._wants_title(rt, result):
            rt.title_asked = True
            self._background.spawn(self._title(rt, text, result.text), name=f"title:{rt.key}")

    def _wants_title(self, rt: SessionRuntime, result: TurnResult) -> bool:
        return (
            self.config.gateway.auto_title
            and rt.record.title is None
            and not rt.title_asked
            and bool(result.text)
            and not result.error
            and not result.interrupted
        )

    async def _title(self, rt: SessionRuntime, question: str, answer: str) -> None:
        """Name a session after its first exchange (unless someone named it meanwhile)."""
        model = self.registry.model_for(rt)
        title = await suggest_title(self.agent.pool.client_for(model), model, question, answer)
        if title is None:
            return
        record = rt.record
        for candidate in [title, *(f"{title} ({n})" for n in range(2, 10))]:
            if record.title is not None or rt.record is not record:
                return  # titled by /title, or reset, while the model was thinking
            try:
                named = await self.store.name_untitled(record.id, candidate)
            except ValueError:
                continue  # another session has that title
            if not named or record.title is not None:
                return  # /title won the race: a person's name stays
            record.title = candidate
            self.registry.publish(rt, "titled")
            return

    async def run_agent(
        self,
        rt: SessionRuntime,
        history: list[dict[str, Any]],
        *,
        delivery: TurnDelivery | None = None,
        instructions: str | None = None,
        use_tools: bool = True,
        inbox_ids: Sequence[int] = (),
        options: TurnOptions | None = None,
    ) -> TurnResult:
        """One agent turn over the stored history (whose last entry is the user's).

        ``delivery`` replaces the platform's own (for a caller that returns the answer
        itself, like the API server); ``instructions`` extend the system prompt for this
        turn only; ``inbox_ids`` are the inbox rows this turn answers.
        """
        self._turn_counter += 1
        turn_id = self._turn_counter
        record = rt.record  # a reset during the turn must not move its answer
        model = self.registry.model_for(rt)
        started = time.monotonic()
        self.bus.publish(
            ev.TurnStarted(
                session_key=rt.key, session_id=rt.record.id, turn_id=turn_id, model=model.name
            )
        )
        if delivery is None:
            adapter = self.supervisor.adapters.get(rt.source.platform)
            delivery = adapter.begin_turn(rt.source) if adapter else None
            if adapter is not None:
                self._background.spawn(
                    _quietly(adapter.send_typing(rt.source)), name=f"typing:{rt.key}"
                )
        sink = TurnSink(self.bus, rt.key, turn_id, delivery or NULL_DELIVERY)
        whose = rt.acting_for or rt.source  # a cron run of a chat's job works for that chat
        boundary = boundary_for(self.config.paths.home, whose.platform, whose.session_key)
        ctx = ToolContext(
            session_id=rt.record.id,
            session_key=rt.key,
            cwd=boundary.workspace or self._cwd,
            boundary=boundary,
            interrupt=rt.interrupt,
            search=self._searcher(rt),
            approve=self.approver(rt) if self.approver is not None else None,
        )
        system = self.registry.system_prompt(rt)
        if instructions:
            system = f"{system}\n\n{instructions.strip()}"
        messages = [{"role": "system", "content": system}, *history]
        window = await self.context.window(model)
        steered: list[int] = []
        result = await self.agent.run_turn(
            model=model,
            messages=messages,
            sink=sink,
            ctx=ctx,
            use_tools=use_tools,
            options=options,
            context_budget=int(window * TURN_BUDGET),
            steer=lambda: self._take_steering(rt, steered),
        )
        inbox_ids = [*inbox_ids, *steered]
        if inbox_ids and result.interrupted and rt.stop_reason == "shutdown":
            # Not stored: the next start answers the stored user message afresh.
            if delivery is not None:
                await self._finish_delivery(rt, delivery, result, note=RESTART_NOTE)
            return result
        if result.messages:
            await self.store.append_messages(
                record.id, result.messages, also=Inbox.marking(inbox_ids, "answered")
            )
            self.registry.touched(rt)
            history.extend(m.to_openai() for m in result.messages)
        if result.error:
            await self.keep_note(record.id, "notice", result.error, {"level": "error"})
        rt.last_turn = (result.prompt_tokens, result.completion_tokens)
        used = 0
        if history is rt.history:  # the session's own context (not a caller's)
            overflow = await self.context.overflowed(model, result.error, result.error_status)
            if overflow and self.config.compression.enabled:
                await self.context.compress(rt, on_demand=False)  # so the next turn fits
            elif result.last_call_tokens and record is rt.record:
                rt.reported = (result.last_call_tokens, len(history))
            used = rt.context_tokens = self.context.measure(rt, history)
        record.prompt_tokens += result.prompt_tokens
        record.completion_tokens += result.completion_tokens
        self.bus.publish(
            ev.TurnFinished(
                session_key=rt.key,
                session_id=record.id,
                turn_id=turn_id,
                text=result.text,
                interrupted=result.interrupted,
                error=result.error,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                duration=time.monotonic() - started,
                context_tokens=used,
                context_length=window if used else 0,
            )
        )
        if delivery is not None:
            await self._finish_delivery(rt, delivery, result)
        if inbox_ids:
            await self.inbox.done(inbox_ids)
        return result

    async def _finish_delivery(
        self,
        rt: SessionRuntime,
        delivery: TurnDelivery,
        result: TurnResult,
        *,
        note: str | None = None,
    ) -> None:
        platform = rt.source.platform
        text, interrupted, error = result.text, result.interrupted, result.error
        if note is not None:
            text, interrupted, error = (f"{text} …\n\n{note}" if text else note), False, None
        elif interrupted and rt.stop_reason == "superseded":
            # A follow-up restarts the turn: no "(interrupted)" message per follow-up.
            text, interrupted = (f"{text} …" if text else ""), False
        try:
            await delivery.finish(text, interrupted=interrupted, error=error)
        except Exception as exc:
            log.exception("delivery of the answer failed in %s", rt.key)
            self.supervisor.error(platform, str(exc) or type(exc).__name__)
            self.bus.publish(
                ev.Notice(
                    text="The answer could not be delivered to the chat.",
                    level="error",
                    session_key=rt.key,
                )
            )
            return
        if delivery is not NULL_DELIVERY and platform != "local":
            self.supervisor.sent(platform)

    # --- request/response turns (API server, cron, webhooks) ---------------------------

    def _searcher(self, rt: SessionRuntime) -> Callable[[str, int], Awaitable[list[Any]]]:
        """session_search for one chat: the operator's terminal searches everything; a
        remote chat only its own history, so no user can read another's conversations. A
        turn working for a chat (a cron job made there, a background run) searches as it."""
        whose = rt.acting_for or rt.source
        if whose.platform == "local":

            async def search_all(query: str, limit: int) -> list[Any]:
                return await self.store.search(query, limit=limit)

            return search_all

        async def search_own(query: str, limit: int) -> list[Any]:
            return await self.store.search(query, limit=limit, session_key=whose.session_key)

        return search_own


class _NotStored(Exception):
    """A turn's user message could not be stored: its batch is to be tried again."""

    def __init__(self, batch: list[MessageEvent], cause: Exception) -> None:
        super().__init__(str(cause))
        self.batch, self.cause = batch, cause


async def _quietly(coro: Awaitable[None]) -> None:
    try:
        await coro
    except Exception:
        log.debug("typing indicator failed", exc_info=True)
