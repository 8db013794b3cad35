"""The gateway's pipeline: auth -> command? -> session -> agent turn -> delivery.

Every platform, the local terminal included, hands its messages to :meth:`GatewayRunner.handle`.
Commands run at once, even while the agent is busy in that chat; ordinary messages become
agent turns, one at a time per session. Everything observable is published on the bus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.access.policy import hash_id
from hermes_gateway.agent.loop import Agent, TurnResult
from hermes_gateway.agent.tools.base import ApprovalRequest, ToolContext
from hermes_gateway.commands.registry import CommandContext, CommandRegistry, CommandResult
from hermes_gateway.config import Config, ModelConfig
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import (
    NULL_DELIVERY,
    FatalPlatformError,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.store import SessionRecord, SessionStore, StoredMessage

log = logging.getLogger(__name__)

Authorizer = Callable[[MessageEvent], Awaitable[bool]]
Approver = Callable[[ApprovalRequest], Awaitable[bool]]

RESTART_BACKOFF_CAP = 300.0


@dataclass
class SessionRuntime:
    """In-memory state of one live conversation (its history is cached after first load)."""

    key: str
    source: SessionSource
    record: SessionRecord
    history: list[dict[str, Any]] | None = None
    task: asyncio.Task[None] | None = None
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    pending: list[MessageEvent] = field(default_factory=list)
    model_name: str | None = None
    personality: str | None = None
    system_prompt: str | None = None
    last_turn: tuple[int, int] = (0, 0)

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass
class PlatformStats:
    """Per-platform counters for the Platforms pane."""

    received: int = 0
    sent: int = 0
    last_error: str = ""


class _Sink:
    """Fans the agent's progress out to the bus and the chat's delivery."""

    __slots__ = ("bus", "delivery", "key", "turn_id")

    def __init__(self, bus: ev.EventBus, key: str, turn_id: int, delivery: TurnDelivery) -> None:
        self.bus, self.key, self.turn_id, self.delivery = bus, key, turn_id, delivery

    def on_delta(self, text: str) -> None:
        self.bus.publish(ev.AgentDelta(session_key=self.key, turn_id=self.turn_id, text=text))
        self.delivery.on_delta(text)

    def on_tool_started(self, call_id: str, name: str, preview: str) -> None:
        self.bus.publish(
            ev.ToolStarted(
                session_key=self.key,
                turn_id=self.turn_id,
                call_id=call_id,
                name=name,
                preview=preview,
            )
        )
        self.delivery.on_tool_started(name, preview)

    def on_tool_finished(
        self, call_id: str, name: str, ok: bool, duration: float, summary: str
    ) -> None:
        self.bus.publish(
            ev.ToolFinished(
                session_key=self.key,
                turn_id=self.turn_id,
                call_id=call_id,
                name=name,
                ok=ok,
                duration=duration,
                summary=summary,
            )
        )
        self.delivery.on_tool_finished(name, ok, duration, summary)

    def on_notice(self, text: str, level: str) -> None:
        self.bus.publish(ev.Notice(text=text, level=level, session_key=self.key))  # type: ignore[arg-type]


class GatewayRunner:
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
        self.adapters: dict[str, PlatformAdapter] = {}
        self.platform_state: dict[str, ev.PlatformStatus] = {}
        self.sessions: dict[str, SessionRuntime] = {}
        self._session_locks: dict[str, asyncio.Lock] = {}
        self._turn_counter = 0
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False
        self._cwd = Path(config.agent.cwd).expanduser()
        self.stats: dict[str, PlatformStats] = {}
        self.paused_sessions: set[str] = set()
        """Chats where the operator answers by hand: messages are stored, not answered."""
        self.paused_platforms: set[str] = set()
        self._status_before_pause: dict[str, ev.PlatformStatus] = {}
        self.approver: Callable[[SessionRuntime], Approver] | None = None
        """Builds ``ToolContext.approve`` for a turn (set by the approvals feature)."""

    @property
    def stopping(self) -> bool:
        """True once stop() began: adapters keep new updates for the next start."""
        return self._stopping

    # --- platforms --------------------------------------------------------------------

    def add_adapter(self, adapter: PlatformAdapter) -> None:
        name = adapter.name

        def status(state: str, detail: str = "", retry_in: float | None = None) -> None:
            event = ev.PlatformStatus(platform=name, state=state, detail=detail, retry_in=retry_in)  # type: ignore[arg-type]
            if state in ("failed", "reconnecting") and detail:
                self.stats_for(name).last_error = detail
            if name in self.paused_platforms and state != "failed":
                self._status_before_pause[name] = event  # shown again on resume
                return
            self.platform_state[name] = event
            self.bus.publish(event)

        adapter.bind(self.handle, status)
        attach = getattr(adapter, "attach_runner", None)
        if attach is not None:  # request/response platforms (the API server) run turns here
            attach(self)
        self.adapters[name] = adapter

    async def start(self) -> None:
        """Start every adapter in its own supervised task; one failing never stops another."""
        for adapter in self.adapters.values():
            task = asyncio.create_task(self._supervise(adapter), name=f"platform:{adapter.name}")
            self._supervisors.append(task)
        await asyncio.sleep(0)

    async def _supervise(self, adapter: PlatformAdapter) -> None:
        delay = 1.0
        while not self._stopping:
            adapter.report("starting")
            try:
                await adapter.start()
                return
            except FatalPlatformError as exc:
                log.error("%s cannot start: %s", adapter.name, exc)
                adapter.report("failed", str(exc))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s failed to start: %s; retrying in %.0fs", adapter.name, exc, delay)
                adapter.report("reconnecting", str(exc) or type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_BACKOFF_CAP)

    async def stop(self) -> None:
        """Stop platforms, interrupt running turns and let them store what they have."""
        self._stopping = True
        for task in self._supervisors:
            task.cancel()
        for rt in self.sessions.values():
            rt.pending.clear()
            rt.interrupt.set()
        turns = [rt.task for rt in self.sessions.values() if rt.busy]
        if turns:
            await asyncio.wait(turns, timeout=5)
        for adapter in self.adapters.values():
            try:
                await asyncio.wait_for(adapter.stop(), timeout=10)
            except Exception:
                log.exception("stopping %s failed", adapter.name)
        await self.agent.pool.aclose()

    # --- the pipeline -----------------------------------------------------------------

    async def handle(self, event: MessageEvent) -> None:
        """Entry point for every inbound message from every platform."""
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
            self.stats_for(event.source.platform).received += 1
        if event.is_command:
            from hermes_gateway.commands.registry import parse_command

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
        rt = await self.runtime(event.source)
        if rt.key in self.paused_sessions or event.source.platform in self.paused_platforms:
            await self._hold(rt, event)
            return
        if rt.busy:
            rt.pending.append(event)
            if self.config.gateway.busy_mode == "interrupt":
                rt.interrupt.set()
            return
        rt.pending.append(event)
        rt.task = asyncio.create_task(self._session_worker(rt), name=f"turns:{rt.key}")

    def _dropped(self, event: MessageEvent, reason: str) -> None:
        self.bus.publish(
            ev.MessageDropped(
                session_key=event.session_key,
                platform=event.source.platform,
                reason=reason,  # type: ignore[arg-type]
            )
        )

    async def _run_command(self, event: MessageEvent, name: str, args: str) -> None:
        platform = event.source.platform
        spec = self.commands.resolve(name)
        if spec is None:
            hints = self.commands.suggest(name, platform)
            hint = f" Did you mean {', '.join('/' + h for h in hints)}?" if hints else ""
            result = CommandResult(f"Unknown command /{name}.{hint} Try /help.", ok=False)
        elif not spec.allowed_on("local" if event.from_operator else platform):
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
            )
        )
        adapter = self.adapters.get(platform)
        if adapter is not None and result.text and not event.from_operator:
            try:
                await adapter.send(event.source, result.text)
                self.stats_for(platform).sent += 1
            except Exception as exc:
                self.stats_for(platform).last_error = str(exc) or type(exc).__name__
                log.exception("could not deliver /%s reply on %s", name, platform)

    # --- the operator stepping in ------------------------------------------------------

    def stats_for(self, platform: str) -> PlatformStats:
        stats = self.stats.get(platform)
        if stats is None:
            stats = self.stats[platform] = PlatformStats()
        return stats

    async def operator_say(self, source: SessionSource, text: str) -> None:
        """Send ``text`` into a chat as the bot, stored as from the operator."""
        rt = await self.runtime(source)
        message = StoredMessage(role="assistant", content=text, meta={"from_operator": True})
        await self.store.append_messages(rt.record.id, [message])
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
            )
        )
        adapter = self.adapters.get(source.platform)
        if adapter is not None and source.platform != "local":
            try:
                await adapter.send(rt.source, text)
                self.stats_for(source.platform).sent += 1
            except Exception as exc:
                self.stats_for(source.platform).last_error = str(exc) or type(exc).__name__
                self.bus.publish(
                    ev.Notice(text=f"Could not deliver: {exc}", level="error", session_key=rt.key)
                )

    def set_session_paused(self, session_key: str, paused: bool) -> None:
        """Pause the agent in one chat (the operator answers by hand) or hand it back."""
        if paused:
            self.paused_sessions.add(session_key)
            self.interrupt(session_key)
        else:
            self.paused_sessions.discard(session_key)
        rt = self.sessions.get(session_key)
        if rt is not None:
            self.publish_session(rt, "updated")

    def set_platform_paused(self, platform: str, paused: bool) -> None:
        """Stop answering a whole platform; its messages are still stored and shown."""
        if paused:
            self.paused_platforms.add(platform)
            for key, rt in self.sessions.items():
                if rt.source.platform == platform:
                    self.interrupt(key)
        else:
            self.paused_platforms.discard(platform)
        if paused:
            before = self.platform_state.get(platform)
            if before is not None and before.state != "paused":
                self._status_before_pause[platform] = before
            event = ev.PlatformStatus(
                platform=platform, state="paused", detail="paused by the operator"
            )
        else:
            before = self._status_before_pause.pop(platform, None)
            event = ev.PlatformStatus(
                platform=platform,
                state=before.state if before else "connected",
                detail=before.detail if before else "",
            )
        self.platform_state[platform] = event
        self.bus.publish(event)

    async def _hold(self, rt: SessionRuntime, event: MessageEvent) -> None:
        """Store and show a message in a paused chat without waking the agent."""
        user = StoredMessage(role="user", content=event.text)
        await self.store.append_messages(rt.record.id, [user])
        if rt.history is not None:
            rt.history.append(user.to_openai())
        self.bus.publish(
            ev.MessageReceived(
                session_key=rt.key,
                session_id=rt.record.id,
                platform=rt.source.platform,
                text=event.text,
                user_name=event.source.user_name,
            )
        )

    # --- sessions ---------------------------------------------------------------------

    async def runtime(self, source: SessionSource) -> SessionRuntime:
        """The live session for a chat, creating the stored session on first contact."""
        key = source.session_key
        rt = self.sessions.get(key)
        if rt is not None:
            return rt
        lock = self._session_locks.setdefault(key, asyncio.Lock())
        async with lock:
            rt = self.sessions.get(key)
            if rt is not None:
                return rt
            record = await self.store.get_active_session(key)
            reason = "resumed"
            if record is None:
                record = await self._create_record(source)
                reason = "started"
            rt = SessionRuntime(key=key, source=source, record=record)
            self.sessions[key] = rt
            self.publish_session(rt, reason)
            return rt

    async def _create_record(self, source: SessionSource) -> SessionRecord:
        return await self.store.create_session(
            source.session_key,
            platform=source.platform,
            chat_type=source.chat_type,
            chat_id=source.chat_id,
            thread_id=source.thread_id,
            user_id=source.user_id,
            display_name=source.display_name,
        )

    def publish_session(self, rt: SessionRuntime, reason: str) -> None:
        self.bus.publish(
            ev.SessionChanged(
                session_key=rt.key,
                session_id=rt.record.id,
                reason=reason,  # type: ignore[arg-type]
                title=rt.record.title,
                platform=rt.source.platform,
                display_name=rt.source.display_name,
            )
        )

    async def reset_session(self, source: SessionSource) -> SessionRecord:
        """Start a fresh session for this chat (the old one stays searchable)."""
        rt = await self.runtime(source)
        self.interrupt(rt.key, drop_pending=True)
        rt.record = await self._create_record(source)
        rt.history, rt.system_prompt, rt.last_turn = [], None, (0, 0)
        self.publish_session(rt, "reset")
        return rt.record

    async def activate_session(self, source: SessionSource, record: SessionRecord) -> None:
        rt = await self.runtime(source)
        self.interrupt(rt.key, drop_pending=True)
        rt.record = await self.store.activate_session(record.id)
        rt.history, rt.system_prompt = None, None
        self.publish_session(rt, "resumed")

    def interrupt(self, session_key: str, *, drop_pending: bool = True) -> bool:
        """Stop the running answer in a chat; True if there was one."""
        rt = self.sessions.get(session_key)
        if rt is None or not rt.busy:
            return False
        if drop_pending:
            rt.pending.clear()
        rt.interrupt.set()
        return True

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no session has a turn running (tests, benchmarks, shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = [rt.task for rt in self.sessions.values() if rt.busy]
            if not tasks:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("sessions still busy")
            await asyncio.wait(tasks, timeout=remaining)

    def model_for(self, rt: SessionRuntime) -> ModelConfig:
        base = self.config.model
        if rt.model_name and rt.model_name != base.name:
            return replace(base, name=rt.model_name)
        return base

    def system_prompt(self, rt: SessionRuntime) -> str:
        """Built once per session and cached; changed only by /personality or a reset."""
        if rt.system_prompt is None:
            parts = [self.config.agent.system_prompt]
            name = rt.personality if rt.personality is not None else self.config.personality
            if name and name in self.config.personalities:
                parts.append(self.config.personalities[name])
            src = rt.source
            where = "the local terminal" if src.platform == "local" else f"{src.platform}"
            parts.append(f"You are talking with {src.display_name} via {where}.")
            rt.system_prompt = "\n\n".join(p.strip() for p in parts if p.strip())
        return rt.system_prompt

    # --- turns ------------------------------------------------------------------------

    async def _session_worker(self, rt: SessionRuntime) -> None:
        """Answer the chat's pending messages, a batch per turn, until none are left."""
        try:
            while rt.pending and not self._stopping:
                batch, rt.pending = rt.pending, []
                rt.interrupt.clear()
                try:
                    await self._turn(rt, batch)
                except Exception as exc:
                    log.exception("turn failed in %s", rt.key)
                    self.bus.publish(
                        ev.Notice(text=f"The turn failed: {exc}", level="error", session_key=rt.key)
                    )
        finally:
            rt.task = None

    async def _history(self, rt: SessionRuntime) -> list[dict[str, Any]]:
        if rt.history is None:
            stored = await self.store.get_messages(rt.record.id)
            rt.history = [m.to_openai() for m in stored]
        return rt.history

    async def _turn(self, rt: SessionRuntime, batch: list[MessageEvent]) -> None:
        text = "\n\n".join(e.text for e in batch if e.text.strip())
        meta: dict[str, Any] = {}
        if any(e.media for e in batch):
            meta["media"] = [m.path for e in batch for m in e.media]
        user = StoredMessage(role="user", content=text, meta=meta)
        history = await self._history(rt)
        await self.store.append_messages(rt.record.id, [user])
        history.append(user.to_openai())
        self.bus.publish(
            ev.MessageReceived(
                session_key=rt.key,
                session_id=rt.record.id,
                platform=rt.source.platform,
                text=text,
                user_name=batch[-1].source.user_name,
            )
        )
        await self.run_agent(rt, history)

    async def run_agent(
        self,
        rt: SessionRuntime,
        history: list[dict[str, Any]],
        *,
        delivery: TurnDelivery | None = None,
        instructions: str | None = None,
        use_tools: bool = True,
    ) -> TurnResult:
        """One agent turn over the stored history (whose last entry is the user's).

        ``delivery`` replaces the platform's own (for a caller that returns the answer
        itself, like the API server); ``instructions`` extend the system prompt for this
        turn only.
        """
        self._turn_counter += 1
        turn_id = self._turn_counter
        model = self.model_for(rt)
        started = time.monotonic()
        self.bus.publish(
            ev.TurnStarted(
                session_key=rt.key, session_id=rt.record.id, turn_id=turn_id, model=model.name
            )
        )
        if delivery is None:
            adapter = self.adapters.get(rt.source.platform)
            delivery = adapter.begin_turn(rt.source) if adapter else None
            if adapter is not None:
                asyncio.create_task(_quietly(adapter.send_typing(rt.source)))
        sink = _Sink(self.bus, rt.key, turn_id, delivery or NULL_DELIVERY)
        ctx = ToolContext(
            session_id=rt.record.id,
            session_key=rt.key,
            cwd=self._cwd,
            interrupt=rt.interrupt,
            search=self._searcher(rt),
            approve=self.approver(rt) if self.approver is not None else None,
        )
        system = self.system_prompt(rt)
        if instructions:
            system = f"{system}\n\n{instructions.strip()}"
        messages = [{"role": "system", "content": system}, *history]
        result = await self.agent.run_turn(
            model=model, messages=messages, sink=sink, ctx=ctx, use_tools=use_tools
        )
        if result.messages:
            await self.store.append_messages(rt.record.id, result.messages)
            history.extend(m.to_openai() for m in result.messages)
        rt.last_turn = (result.prompt_tokens, result.completion_tokens)
        rt.record.prompt_tokens += result.prompt_tokens
        rt.record.completion_tokens += result.completion_tokens
        self.bus.publish(
            ev.TurnFinished(
                session_key=rt.key,
                session_id=rt.record.id,
                turn_id=turn_id,
                text=result.text,
                interrupted=result.interrupted,
                error=result.error,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                duration=time.monotonic() - started,
            )
        )
        if delivery is not None:
            try:
                await delivery.finish(
                    result.text, interrupted=result.interrupted, error=result.error
                )
                if delivery is not NULL_DELIVERY and rt.source.platform != "local":
                    self.stats_for(rt.source.platform).sent += 1
            except Exception as exc:
                log.exception("delivery of the answer failed in %s", rt.key)
                self.stats_for(rt.source.platform).last_error = str(exc) or type(exc).__name__
                self.bus.publish(
                    ev.Notice(
                        text="The answer could not be delivered to the chat.",
                        level="error",
                        session_key=rt.key,
                    )
                )
        return result

    # --- request/response turns (API server, webhooks) ---------------------------------

    async def run_request(
        self,
        source: SessionSource,
        messages: list[StoredMessage],
        *,
        delivery: TurnDelivery,
        history: list[dict[str, Any]] | None = None,
        instructions: str | None = None,
        new_session: bool = False,
        keep: bool = True,
        model_name: str | None = None,
        use_tools: bool = True,
    ) -> tuple[SessionRecord, TurnResult]:
        """One agent turn whose caller waits for the answer (an HTTP request), not a chat.

        It is stored and published like a chat's turn, so it shows live in the TUI, but it
        skips the access policy (the caller authenticated the request) and commands.
        Turns of one session run one after another. Cancelling the caller (a client that
        hung up) interrupts the turn, which still stores what was said and publishes
        TurnFinished.

        Args:
            source: The conversation; its key names the session.
            messages: What this request adds: stored, then answered.
            delivery: Receives the answer as it streams (the HTTP response).
            history: The context before ``messages``; None continues the stored session.
            instructions: Added to the system prompt for this turn only.
            new_session: Start a new stored session for the key (a one-off request).
            keep: Keep the live session afterwards; False frees it (one-off requests, so
                memory stays flat however many there are).
            model_name: A configured model to use instead of the session's.
            use_tools: False answers from the model alone (untrusted input, e.g. webhooks).
        """
        if new_session:
            record = await self._create_record(source)
            rt = SessionRuntime(key=source.session_key, source=source, record=record, history=[])
            self.sessions[rt.key] = rt
            self.publish_session(rt, "started")
        else:
            rt = await self.runtime(source)
        while rt.task is not None and not rt.task.done():
            await asyncio.wait({rt.task})
        if model_name:
            rt.model_name = model_name
        rt.interrupt.clear()
        task = asyncio.create_task(
            self._request_turn(rt, messages, delivery, history, instructions, keep, use_tools),
            name=f"turns:{rt.key}",
        )
        rt.task = task
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            rt.interrupt.set()
            raise
        return rt.record, result

    async def _request_turn(
        self,
        rt: SessionRuntime,
        messages: list[StoredMessage],
        delivery: TurnDelivery,
        history: list[dict[str, Any]] | None,
        instructions: str | None,
        keep: bool,
        use_tools: bool = True,
    ) -> TurnResult:
        try:
            if history is None:
                context = await self._history(rt)
            else:
                context, rt.history = list(history), None  # stored transcript != this context
            if messages:
                await self.store.append_messages(rt.record.id, messages)
                context.extend(m.to_openai() for m in messages)
            user = next((m for m in reversed(messages) if m.role == "user"), None)
            self.stats_for(rt.source.platform).received += 1
            self.bus.publish(
                ev.MessageReceived(
                    session_key=rt.key,
                    session_id=rt.record.id,
                    platform=rt.source.platform,
                    text=(user.content or "") if user else "",
                    user_name=rt.source.user_name,
                )
            )
            return await self.run_agent(
                rt, context, delivery=delivery, instructions=instructions, use_tools=use_tools
            )
        finally:
            if rt.pending and not self._stopping:  # a chat message arrived meanwhile
                rt.task = asyncio.create_task(self._session_worker(rt), name=f"turns:{rt.key}")
            elif not keep and self.sessions.get(rt.key) is rt:
                del self.sessions[rt.key]
                self._session_locks.pop(rt.key, None)

    def _searcher(self, rt: SessionRuntime) -> Callable[[str, int], Awaitable[list[Any]]]:
        """session_search for one chat: the operator's terminal searches everything; a
        remote chat only its own history, so no user can read another's conversations."""
        if rt.source.platform == "local":

            async def search_all(query: str, limit: int) -> list[Any]:
                return await self.store.search(query, limit=limit)

            return search_all

        async def search_own(query: str, limit: int) -> list[Any]:
            hits = await self.store.search(query, limit=limit * 5)
            return [h for h in hits if h.session_key == rt.key][:limit]

        return search_own


async def _quietly(coro: Awaitable[None]) -> None:
    try:
        await coro
    except Exception:
        log.debug("typing indicator failed", exc_info=True)
