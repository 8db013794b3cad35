"""The session registry: which live conversation a chat is in, and its cached state.

A session key names a chat; the registry keeps one :class:`SessionRuntime` per key that has
been active since start, backed by the stored session. Creating, resetting and switching a
chat's session happen here, and each change is published as a ``SessionChanged`` event, which
is how the control room learns about sessions (it never reads this registry).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway import session_reset as sr
from hermes_gateway.agent.context import active_context
from hermes_gateway.config import Config, ModelConfig
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.store import SessionRecord, SessionStore, StoredMessage
from hermes_gateway.store.session_store import kv_writer

log = logging.getLogger(__name__)

WATCH_PAGE, WATCH_PAGES = 500, 20
"""The watcher reads stored candidates a page at a time, at most this many pages a pass
(chats whose own policy keeps them are skipped, not allowed to starve the others)."""
NOTICE_KV = "session_reset_notice:"
"""kv key prefix: a reset the chat was not told about yet (the watcher reset it while nobody
was writing); told at the chat's next contact, even after a restart."""

__all__ = ["SessionRegistry", "SessionRuntime"]


@dataclass
class SessionRuntime:
    """In-memory state of one live conversation (its history is cached after first load)."""

    key: str
    source: SessionSource
    record: SessionRecord
    history: list[dict[str, Any]] | None = None
    task: asyncio.Task[Any] | None = None
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    pending: list[MessageEvent] = field(default_factory=list)
    steering: list[MessageEvent] = field(default_factory=list)
    """Messages to add to the running turn at its next step (``steer``); what the turn does
    not take goes to ``pending`` when it ends."""
    model_name: str | None = None
    personality: str | None = None
    system_prompt: str | None = None
    last_turn: tuple[int, int] = (0, 0)
    resume: list[int] = field(default_factory=list)
    """Inbox rows whose user message is stored but unanswered (a crash or stop): answered by
    the next turn over the stored history, without storing the message again."""
    acting_for: SessionSource | None = None
    """The chat a request turn works for (a cron run of that chat's job): its tools get that
    chat's workspace and approval mode, not the operator's."""
    title_asked: bool = False
    """The model was asked for this session's title already (asked once per session)."""
    stop_reason: str | None = None
    """Why the running turn was interrupted: ``shutdown`` (resumed at the next start),
    ``superseded`` (a follow-up in interrupt mode: no "(interrupted)" note), None (a person)."""
    last_active: float = 0.0
    """When a message was last stored in this session (the reset policy's clock)."""
    reset_notice: str | None = None
    """The chat's session expired and the chat was not told yet: what to tell it."""
    compress_skip: int = 0
    """Turns left before compression is tried again after it failed."""
    context_tokens: int = 0
    """The context's size after the last turn (as shown in the status line)."""
    reported: tuple[int, int] = (0, 0)
    """(tokens, history length): the server's count of the context after the last turn, and
    how many history entries it covered (0 tokens: the server reported no usage)."""
    used_at: float = field(default_factory=time.monotonic)
    """When the chat last reached its runtime (monotonic): the idle sweep's clock."""

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


MAX_LIVE_SESSIONS = 512
"""Idle live sessions kept in memory; beyond it the least recently used idle ones are dropped
(their stored copy stays, and the next message loads it again), so a gateway that has served
thousands of chats or API session ids keeps flat memory."""
IDLE_EVICT_SECONDS = 30 * 60.0
"""A live session nobody reached for this long is dropped from memory by the sweep (the
watcher's pass), however few there are: its cached history is the bulk of a chat's memory."""


class SessionRegistry:
    """Live sessions by key, created from (or resumed out of) the store on first contact."""

    def __init__(
        self,
        config: Config,
        store: SessionStore,
        bus: ev.EventBus,
        *,
        max_live: int = MAX_LIVE_SESSIONS,
        idle_evict: float = IDLE_EVICT_SECONDS,
    ) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.max_live = max_live
        self.idle_evict = idle_evict
        self.sessions: dict[str, SessionRuntime] = {}
        """Insertion order is recency: a key used again moves to the end."""
        self.paused: set[str] = set()
        """Chats where the operator answers by hand: messages are stored, not answered."""
        self._locks: dict[str, asyncio.Lock] = {}
        self.clock: Callable[[], float] = time.time
        """Wall clock of the reset policies (tests move it)."""
        self.zone = sr.zone_of(config)

    def get(self, key: str) -> SessionRuntime | None:
        return self.sessions.get(key)

    async def runtime(self, source: SessionSource) -> SessionRuntime:
        """The live session for a chat, creating the stored session on first contact.

        An expired session (see :mod:`hermes_gateway.session_reset`) is replaced first, under
        the chat's lock: a message racing the reset waits for it and lands in the new session.
        """
        key = source.session_key
        rt = self.sessions.get(key)
        if rt is not None and self.expired(rt) is None:
            self._touch(key, rt)
            return rt
        async with self._lock(key):
            rt = self.sessions.get(key)
            if rt is None:
                record = await self.store.get_active_session(key)
                reason = "loaded"
                if record is None:
                    record = await self.create_record(source)
                    reason = "started"
                rt = SessionRuntime(
                    key=key, source=source, record=record, last_active=record.updated_at
                )
                self.sessions[key] = rt
                self._evict()
                self.publish(rt, reason)
                told = await self.store.kv_get(NOTICE_KV + key)
                if told is not None:  # deleted once told (see GatewayRunner._tell_reset)
                    rt.reset_notice = str(json.loads(told).get("text", "")) or None
            await self._expire_if_due(rt)
            self._touch(key, rt)
            return rt

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def policy(self, source: SessionSource) -> sr.ResetPolicy:
        return sr.policy_for(self.config, source.platform, source.chat_type)

    def expired(self, rt: SessionRuntime) -> sr.ResetReason | None:
        """Why the chat's session has expired now, or None (also while it is at work, and
        when it holds nothing to clear)."""
        if rt.busy or rt.pending or rt.resume or rt.steering:
            return None
        if not (rt.record.message_count or rt.history):
            return None
        return sr.expiry(rt.last_active, self.policy(rt.source), self.clock(), self.zone)

    async def _expire_if_due(self, rt: SessionRuntime) -> bool:
        """Reset ``rt`` if it expired (the caller holds its lock)."""
        reason = self.expired(rt)
        if reason is None:
            return False
        policy = self.policy(rt.source)
        old = rt.record
        text = reset_text(policy, reason)
        notify = policy.notifies(rt.source.platform)
        # The notice is kept with the reset (one transaction): a crash before the chat's
        # next message cannot lose it, and it is deleted only once sent.
        keep = kv_writer(NOTICE_KV + rt.key, json.dumps({"text": text})) if notify else None
        rt.record = await self.create_record(rt.source, also=keep)
        rt.history, rt.system_prompt, rt.last_turn = [], None, (0, 0)
        rt.title_asked, rt.context_tokens, rt.last_active = False, 0, rt.record.updated_at
        rt.reported = (0, 0)
        rt.reset_notice = text if notify else None
        log.info("%s: session expired (%s), %s -> %s", rt.key, reason, old.id, rt.record.id)
        self.publish(rt, "reset", expired=reason, previous_id=old.id)
        self.bus.publish(ev.Notice(text=text, session_key=rt.key))
        return True

    async def expire_due(self) -> int:
        """Reset every expired session, live or only stored (the watcher's pass); how many.

        Only sessions that may have expired are read (last active before the loosest
        policy's cutoff); each is checked again under its chat's lock.
        """
        now = self.clock()
        done = 0
        for key, rt in list(self.sessions.items()):
            if self.expired(rt) is not None:
                async with self._lock(key):
                    if self.sessions.get(key) is rt and await self._expire_if_due(rt):
                        done += 1
        cutoffs = [sr.cutoff(p, now, self.zone) for p in self._policies()]
        latest = max((c for c in cutoffs if c is not None), default=None)
        if latest is None:
            return done
        offset = 0
        for _ in range(WATCH_PAGES):
            page = await self.store.stale_active_sessions(latest, limit=WATCH_PAGE, offset=offset)
            kept = 0
            for record in page:
                if record.session_key in self.sessions:
                    kept += 1
                    continue
                reset = await self._expire_stored(record)
                done += reset
                kept += 1 - reset  # a reset one leaves the candidates: the page shifts
            if len(page) < WATCH_PAGE:
                break
            offset += kept
        return done

    def _policies(self) -> list[sr.ResetPolicy]:
        base = sr.policy_for(self.config, "", "")
        names = [(p, "") for p in self.config.reset_by_platform]
        names += [("", t) for t in self.config.reset_by_type]
        return [base, *(sr.policy_for(self.config, p, t) for p, t in names)]

    async def _expire_stored(self, record: SessionRecord) -> int:
        """Reset a chat that is not live: a new stored session, the reason kept for its next
        contact."""
        policy = sr.policy_for(self.config, record.platform, record.chat_type)
        reason = sr.expiry(record.updated_at, policy, self.clock(), self.zone)
        if reason is None or not record.message_count:
            return 0
        key = record.session_key
        async with self._lock(key):
            if key in self.sessions:
                return 0  # it came alive meanwhile: its next contact checks it
            current = await self.store.get_active_session(key)
            if current is None or current.id != record.id:
                return 0
            text = reset_text(policy, reason)
            keep = None
            if policy.notifies(record.platform):
                keep = kv_writer(NOTICE_KV + key, json.dumps({"text": text}))
            fresh = await self.store.create_session(
                key,
                platform=record.platform,
                chat_type=record.chat_type,
                chat_id=record.chat_id,
                thread_id=record.thread_id,
                user_id=record.user_id,
                display_name=record.display_name,
                also=keep,
            )
        self.bus.publish(
            ev.SessionChanged(
                session_key=key,
                session_id=fresh.id,
                reason="reset",
                platform=record.platform,
                display_name=record.display_name,
                paused=key in self.paused,
                model=self.config.model.name,
                expired=reason,
                previous_id=record.id,
            )
        )
        self.bus.publish(ev.Notice(text=text, session_key=key))
        return 1

    def _touch(self, key: str, rt: SessionRuntime) -> None:
        rt.used_at = time.monotonic()
        if next(reversed(self.sessions)) != key:
            del self.sessions[key]
            self.sessions[key] = rt

    def _evictable(self, key: str, rt: SessionRuntime) -> bool:
        """Whether dropping ``rt`` loses nothing: no work running or waiting, nothing only
        memory holds (a pause, an untold reset, a model or personality chosen in the chat),
        and nobody inside the chat's lock."""
        if rt.busy or rt.pending or rt.resume or rt.steering or rt.reset_notice:
            return False
        if key in self.paused or rt.model_name or rt.personality is not None:
            return False
        lock = self._locks.get(key)
        return lock is None or not lock.locked()

    def _drop(self, key: str) -> None:
        del self.sessions[key]
        self._locks.pop(key, None)

    def _evict(self) -> None:
        """Drop the least recently used idle sessions beyond ``max_live``."""
        excess = len(self.sessions) - self.max_live
        if excess <= 0:
            return
        for key in list(self.sessions):
            if excess <= 0:
                break
            if self._evictable(key, self.sessions[key]):
                self._drop(key)
                excess -= 1

    def evict_idle(self, now: float | None = None) -> int:
        """Drop the sessions nobody reached for ``idle_evict`` seconds (the sweep); how many.

        Their stored copy stays: the chat's next message loads it again, transparently.
        """
        cutoff = (time.monotonic() if now is None else now) - self.idle_evict
        dropped = 0
        for key, rt in list(self.sessions.items()):  # least recently used first
            if rt.used_at > cutoff:
                break
            if self._evictable(key, rt):
                self._drop(key)
                dropped += 1
        return dropped

    def adopt(self, rt: SessionRuntime, reason: str = "started") -> None:
        """Make ``rt`` the live session of its key (a one-off request's fresh session)."""
        self.sessions.pop(rt.key, None)
        self.sessions[rt.key] = rt
        self._evict()
        self.publish(rt, reason)

    def forget(self, rt: SessionRuntime) -> None:
        """Drop a live session from memory (its stored copy stays)."""
        if self.sessions.get(rt.key) is rt:
            del self.sessions[rt.key]
            self._locks.pop(rt.key, None)

    async def create_record(
        self,
        source: SessionSource,
        *,
        also: Callable[[Any], object] | None = None,
        messages: Sequence[StoredMessage] = (),
    ) -> SessionRecord:
        """A new stored session for ``source`` (``messages`` stored in its transaction)."""
        return await self.store.create_session(
            source.session_key,
            platform=source.platform,
            chat_type=source.chat_type,
            chat_id=source.chat_id,
            thread_id=source.thread_id,
            user_id=source.user_id,
            display_name=source.display_name,
            also=also,
            messages=messages,
        )

    def publish(
        self,
        rt: SessionRuntime,
        reason: str,
        *,
        expired: str | None = None,
        previous_id: str | None = None,
    ) -> None:
        self.bus.publish(
            ev.SessionChanged(
                session_key=rt.key,
                session_id=rt.record.id,
                reason=reason,  # type: ignore[arg-type]
                title=rt.record.title,
                platform=rt.source.platform,
                display_name=rt.source.display_name,
                paused=rt.key in self.paused,
                model=self.model_for(rt).name,
                expired=expired,
                previous_id=previous_id,
            )
        )

    async def reset(self, source: SessionSource) -> SessionRecord:
        """Start a fresh session for this chat (the old one stays searchable)."""
        rt = await self.runtime(source)
        self.interrupt(rt.key, drop_pending=True)
        async with self._lock(rt.key):
            rt.record = await self.create_record(source)
            rt.history, rt.system_prompt, rt.last_turn = [], None, (0, 0)
            told, rt.reset_notice = rt.reset_notice, None
            rt.title_asked, rt.context_tokens, rt.reported = False, 0, (0, 0)
            rt.last_active = rt.record.updated_at
        if told:  # a newer /new makes the expiry notice moot
            await self.store.kv_delete(NOTICE_KV + rt.key)
        self.publish(rt, "reset")
        return rt.record

    async def activate(self, source: SessionSource, record: SessionRecord) -> None:
        """Make an earlier stored session the chat's current one."""
        rt = await self.runtime(source)
        self.interrupt(rt.key, drop_pending=True)
        rt.record = await self.store.activate_session(record.id)
        rt.history, rt.system_prompt = None, None
        rt.last_active, rt.context_tokens, rt.reported = self.clock(), 0, (0, 0)
        self.publish(rt, "resumed")

    def interrupt(self, session_key: str, *, drop_pending: bool = True) -> bool:
        """Stop the running answer in a chat; True if there was one."""
        rt = self.sessions.get(session_key)
        if rt is None or not rt.busy:
            return False
        if drop_pending:
            rt.pending.clear()
            rt.steering.clear()
        rt.interrupt.set()
        return True

    def set_paused(self, session_key: str, paused: bool) -> None:
        """Pause the agent in one chat (the operator answers by hand) or hand it back."""
        if paused:
            self.paused.add(session_key)
            self.interrupt(session_key)
        else:
            self.paused.discard(session_key)
        rt = self.sessions.get(session_key)
        if rt is not None:
            self.publish(rt, "updated")

    def busy_tasks(self) -> list[asyncio.Task[Any]]:
        return [rt.task for rt in self.sessions.values() if rt.task is not None and rt.busy]

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no session has a turn running (tests, benchmarks, shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.busy_tasks()
            if not tasks:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("sessions still busy")
            await asyncio.wait(tasks, timeout=remaining)

    async def history(self, rt: SessionRuntime) -> list[dict[str, Any]]:
        """The session's messages in the model's format, loaded once and then kept."""
        if rt.history is None:
            stored = await self.store.get_messages(rt.record.id)
            rt.history = active_context(stored)  # after the latest summary, if any
        return rt.history

    def touched(self, rt: SessionRuntime) -> None:
        """A message was stored in the session: its reset clock starts again."""
        rt.last_active = self.clock()

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
            who = src.display_name
            if src.per_user and src.user_name:
                who = f"{src.user_name} in {src.chat_name or src.chat_id}"
            parts.append(f"You are talking with {who} via {where}.")
            rt.system_prompt = "\n\n".join(p.strip() for p in parts if p.strip())
        return rt.system_prompt


def reset_text(policy: sr.ResetPolicy, reason: sr.ResetReason) -> str:
    """What the chat is told when its session expired."""
    return (
        f"◐ New session: the previous one ended ({policy.describe(reason)}). "
        "It is kept: /resume goes back to it. (config.yaml: session_reset)"
    )
