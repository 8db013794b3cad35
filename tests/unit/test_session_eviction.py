"""Idle live sessions are evicted beyond a cap, so memory stays flat with many chats."""

from __future__ import annotations

import asyncio
import time

from hermes_gateway.events import EventBus
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.runner.sessions import SessionRegistry
from hermes_gateway.store import SessionStore
from tests.conftest import make_config


def source(n: int) -> SessionSource:
    return SessionSource(platform="api", chat_id=f"client-{n}", user_name="API client")


async def test_idle_sessions_beyond_the_cap_are_evicted_and_reload_from_the_store(tmp_path):
    config = make_config(tmp_path)
    store = await SessionStore.open(tmp_path / "db.sqlite")
    try:
        registry = SessionRegistry(config, store, EventBus(), max_live=5)
        first = await registry.runtime(source(0))
        busy = await registry.runtime(source(1))
        busy.task = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
        chosen = await registry.runtime(source(2))
        chosen.model_name = "other-model"  # a choice made in that chat is kept in memory
        for n in range(3, 300):
            await registry.runtime(source(n))
        assert len(registry.sessions) == 5
        assert busy.key in registry.sessions and chosen.key in registry.sessions
        assert first.key not in registry.sessions
        again = await registry.runtime(source(0))  # evicted: loaded from the store again
        assert again.record.id == first.record.id and again is not first
        busy.task.cancel()  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_a_used_session_is_the_most_recent(tmp_path):
    config = make_config(tmp_path)
    store = await SessionStore.open(tmp_path / "db.sqlite")
    try:
        registry = SessionRegistry(config, store, EventBus(), max_live=3)
        keep = await registry.runtime(source(0))
        for n in range(1, 10):
            await registry.runtime(source(n))
            await registry.runtime(source(0))  # used again after every other chat
        assert keep.key in registry.sessions and registry.sessions[keep.key] is keep
    finally:
        await store.close()


async def test_the_idle_sweep_drops_only_sessions_with_nothing_to_lose(tmp_path):
    config = make_config(tmp_path)
    store = await SessionStore.open(tmp_path / "db.sqlite")
    try:
        registry = SessionRegistry(config, store, EventBus(), idle_evict=60)
        idle = await registry.runtime(source(0))
        busy = await registry.runtime(source(1))
        busy.task = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
        waiting = await registry.runtime(source(2))
        waiting.pending.append(MessageEvent(text="later", source=waiting.source))
        steering = await registry.runtime(source(3))
        steering.steering.append(MessageEvent(text="also", source=steering.source))
        paused = await registry.runtime(source(4))
        registry.paused.add(paused.key)
        fresh = await registry.runtime(source(5))
        now = time.monotonic()
        fresh.used_at = now + 30  # reached 30 s later: not idle at +61
        assert registry.evict_idle(now=now + 30) == 0  # nobody idle for 60 s yet
        assert registry.evict_idle(now=now + 61) == 1
        assert set(registry.sessions) == {
            busy.key,
            waiting.key,
            steering.key,
            paused.key,
            fresh.key,
        }
        again = await registry.runtime(source(0))  # loaded from the store, transparently
        assert again is not idle and again.record.id == idle.record.id
        busy.task.cancel()  # type: ignore[union-attr]
    finally:
        await store.close()
