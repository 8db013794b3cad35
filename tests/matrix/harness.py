"""A gateway with the Matrix adapter on the real Synapse, and helpers to drive and read it.

:func:`matrix_gateway` runs the real :class:`~hermes_gateway.gateway.Gateway`, built from
config exactly as in production (the registry finds the Matrix plugin from MATRIX_HOMESERVER
and MATRIX_ACCESS_TOKEN), with a fresh bot account and two fresh users on the shared Synapse.
What a room shows is read back from Synapse (``/messages``) with edits applied, as a client
would render it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.platforms.matrix.adapter import MatrixAdapter
from hermes_gateway.runner import GatewayRunner
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import Recorder
from tests.integration._platform_harness import started_gateway
from tests.matrix.synapse import MatrixUser, Synapse


@dataclass
class People:
    """A bot account and two people (alice is allowed by default, bob is not)."""

    bot: MatrixUser
    alice: MatrixUser
    bob: MatrixUser


async def people(synapse: Synapse) -> People:
    bot, alice, bob = await asyncio.gather(
        synapse.register(), synapse.register(), synapse.register()
    )
    return People(bot, alice, bob)


def shown(events: list[dict[str, Any]], sender: str, thread: str | None = None) -> list[str]:
    """What a client shows of ``sender``'s messages (edits applied), in order.

    ``thread``: only the messages in that thread; None: only those outside any thread.
    """
    originals: dict[str, str] = {}
    order: list[str] = []
    latest: dict[str, tuple[int, str]] = {}
    for e in events:
        if e.get("type") != "m.room.message" or e.get("sender") != sender:
            continue
        content = e.get("content") or {}
        rel = content.get("m.relates_to") or {}
        if rel.get("rel_type") == "m.replace":
            new = content.get("m.new_content") or {}
            ts = int(e.get("origin_server_ts", 0))
            prev = latest.get(rel["event_id"])
            if prev is None or ts >= prev[0]:
                latest[rel["event_id"]] = (ts, str(new.get("body", "")))
            continue
        in_thread = rel.get("event_id") if rel.get("rel_type") == "m.thread" else None
        if in_thread != thread:
            continue
        originals[e["event_id"]] = str(content.get("body", ""))
        order.append(e["event_id"])
    return [latest.get(i, (0, originals[i]))[1] for i in order]


@dataclass
class Harness:
    synapse: Synapse
    people: People
    gateway: Gateway
    runner: GatewayRunner
    adapter: MatrixAdapter
    recorder: Recorder
    readers: dict[str, MatrixUser] = field(default_factory=dict)
    """Who reads a room back (its creator)."""

    @property
    def bot_id(self) -> str:
        return self.people.bot.user_id

    async def wait_joined(
        self, room_id: str, timeout: float = 10.0, user: MatrixUser | None = None
    ) -> None:
        """Until the bot is a member of the room (it joins on an allowed user's invite)."""
        alice = user or self.people.alice
        deadline = time.monotonic() + timeout
        while True:
            data = await self.synapse.call(
                "GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members", alice.token
            )
            if self.bot_id in data.get("joined", {}):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not join {room_id}")
            await asyncio.sleep(0.05)

    async def dm(self, user: MatrixUser | None = None) -> str:
        """A direct chat of ``user`` (alice) with the bot, joined."""
        user = user or self.people.alice
        room = await self.synapse.create_room(user, invite=[self.bot_id], direct=True)
        await self.wait_joined(room, user=user)
        self.readers[room] = user
        return room

    async def room(self, name: str = "town") -> str:
        """A room of alice, bob and the bot (invited by alice), joined by all."""
        p = self.people
        room = await self.synapse.create_room(
            p.alice, invite=[self.bot_id, p.bob.user_id], name=name
        )
        await self.synapse.join(p.bob, room)
        await self.wait_joined(room)
        return room

    async def say(self, room: str, text: str, *, user: MatrixUser | None = None, **kw: Any) -> str:
        return await self.synapse.say(user or self.people.alice, room, text, **kw)

    async def shown(self, room: str, thread: str | None = None) -> list[str]:
        reader = self.people.alice
        if self.readers.get(room):
            reader = self.readers[room]
        events = await self.synapse.messages(reader, room, limit=500)
        return shown(events, self.bot_id, thread)

    async def wait_answers(
        self, room: str, count: int, *, thread: str | None = None, timeout: float = 10.0
    ) -> list[str]:
        """Wait for ``count`` bot messages and for every turn to finish; what they show."""
        deadline = time.monotonic() + timeout
        while len(await self.shown(room, thread)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{count} answers expected, saw {await self.shown(room, thread)}"
                )
            await asyncio.sleep(0.05)
        await self.runner.wait_idle(timeout)
        return await self.shown(room, thread)

    def states(self) -> list[tuple[str, str, float | None]]:
        return [
            (e.state, e.detail, e.retry_in)
            for e in self.recorder.of(ev.PlatformStatus)
            if e.platform == "matrix"
        ]

    async def wait_state(self, state: str, timeout: float = 10.0) -> None:
        await self.recorder.wait_for(
            lambda: bool(self.states()) and self.states()[-1][0] == state, timeout
        )


def matrix_config(
    home: Any, openai: FakeOpenAI, synapse: Synapse, token: str, **env: str
) -> Config:
    """Config as a Hermes user writes it (env names), tuned for fast tests."""
    config = make_config(
        home,
        openai,
        **{"MATRIX_HOMESERVER": synapse.url, "MATRIX_ACCESS_TOKEN": token, **env},
    )
    section = config.platforms.matrix
    section.edit_interval = 0.1
    section.reconnect_initial = 0.05
    section.reconnect_cap = 0.5
    section.sync_timeout = 5.0
    return config


@contextlib.asynccontextmanager
async def matrix_gateway(
    home: Any,
    openai: FakeOpenAI,
    synapse: Synapse,
    *,
    who: People | None = None,
    configure: Callable[[Config], None] | None = None,
    allowed: Callable[[People], str] = lambda p: p.alice.user_id,
    wait_connected: bool = True,
    token: str | None = None,
    **env: str,
) -> AsyncIterator[Harness]:
    """The whole gateway, Matrix enabled by config, with a fresh bot on the shared Synapse."""
    who = who or await people(synapse)
    env.setdefault("MATRIX_ALLOWED_USERS", allowed(who))
    config = matrix_config(home, openai, synapse, token or who.bot.token, **env)
    async with started_gateway(config, "matrix", MatrixAdapter, configure) as up:
        harness = Harness(synapse, who, up.gateway, up.runner, up.adapter, up.recorder)
        if wait_connected:
            await harness.wait_state("connected")
        yield harness
