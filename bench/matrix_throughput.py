"""Matrix messages per second end to end, across many rooms, against a real Synapse.

Starts Synapse (tests/matrix/synapse.py: SQLite on tmpfs, rate limits relaxed), a bot account
and one user in ``--rooms`` direct chats with the bot. The whole production path runs: the
user's message goes into Synapse, the adapter's /sync loop takes it, the runner stores it and
runs the agent against a scripted OpenAI-compatible server that answers at once, and the
answer goes back through the rate gate and nio (``PUT .../send/m.room.message``) into
Synapse, where the user's own /sync sees it. Each room is a closed loop (the user waits for
the answer before writing again), so every message costs one full turn.

Then the same load with a trivial echo bot in place of the gateway (its own /sync and send,
nothing else): what Synapse itself allows on this machine, so the gateway's figure can be
read against it.

Prints messages/s, the round trip under load (p50/p95), and both figures. Asserts nothing.
Run: ``python bench/matrix_throughput.py [--rooms 50] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hermes_gateway.config import load_config
from hermes_gateway.paths import HermesPaths
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.matrix.synapse import MatrixUser, Synapse

SYNC_FILTER = '{"presence":{"types":[]},"room":{"ephemeral":{"types":[]}}}'


class Listener:
    """One account's /sync loop, putting ``sender``'s new messages in a queue per room."""

    def __init__(self, synapse: Synapse, user: MatrixUser, sender: str) -> None:
        self.synapse, self.user, self.sender = synapse, user, sender
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.since: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def _sync(self, timeout_ms: int) -> dict[str, Any]:
        path = f"/_matrix/client/v3/sync?timeout={timeout_ms}&filter={SYNC_FILTER}"
        if self.since:
            path += f"&since={self.since}"
        data: dict[str, Any] = await self.synapse.call("GET", path, self.user.token)
        self.since = data["next_batch"]
        return data

    async def start(self) -> None:
        await self._sync(0)  # from now on
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            data = await self._sync(10_000)
            for room_id, room in data.get("rooms", {}).get("join", {}).items():
                for event in room.get("timeline", {}).get("events", []):
                    if event.get("sender") != self.sender or event.get("type") != "m.room.message":
                        continue
                    rel = event.get("content", {}).get("m.relates_to", {})
                    if rel.get("rel_type") == "m.replace":
                        continue  # an edit of an answer already counted
                    self.queues[room_id].put_nowait(event)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _conversation(
    synapse: Synapse,
    user: MatrixUser,
    room: str,
    answers: asyncio.Queue[dict[str, Any]],
    deadline: float,
    latencies: list[float],
) -> int:
    done = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        await synapse.say(user, room, f"message {done}")
        await asyncio.wait_for(answers.get(), timeout=60)
        latencies.append(time.monotonic() - started)
        done += 1
    return done


async def _measure(
    synapse: Synapse,
    user: MatrixUser,
    rooms: list[str],
    listener: Listener,
    seconds: float,
    latencies: list[float],
) -> tuple[int, float]:
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    counts = await asyncio.gather(
        *(_conversation(synapse, user, r, listener.queues[r], deadline, latencies) for r in rooms)
    )
    return sum(counts), time.monotonic() - started


async def _echo_bot(
    synapse: Synapse, bot: MatrixUser, user_id: str
) -> Callable[[], Awaitable[None]]:
    """A bot that answers each of ``user_id``'s messages at once: Synapse alone."""
    listener = Listener(synapse, bot, user_id)
    await listener.start()

    async def answer(room: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            event = await queue.get()
            body = event["content"].get("body", "")
            await synapse.send(bot, room, {"msgtype": "m.text", "body": f"echo: {body}"})

    tasks: dict[str, asyncio.Task[None]] = {}

    async def route() -> None:
        while True:
            for room, queue in list(listener.queues.items()):
                if room not in tasks:
                    tasks[room] = asyncio.get_running_loop().create_task(answer(room, queue))
            await asyncio.sleep(0.01)

    router = asyncio.get_running_loop().create_task(route())

    async def stop() -> None:
        router.cancel()
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(router, *tasks.values(), return_exceptions=True)
        await listener.stop()

    return stop


def _summary(label: str, total: int, elapsed: float, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies) or [0.0]
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(
        f"  {label:<22} {total / elapsed:7.1f} messages/s   ({total} in {elapsed:.1f} s;"
        f" round trip p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms)"
    )


async def run(rooms_n: int, seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    synapse = Synapse()
    await synapse.start()
    try:
        bot, user = await synapse.register(), await synapse.register()
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            async with FakeOpenAI() as model:
                env = {
                    "HERMES_HOME": str(home),
                    "OPENAI_BASE_URL": model.base_url,
                    "OPENAI_API_KEY": "test-key",
                    "HERMES_MODEL": "fake-model",
                    "MATRIX_HOMESERVER": synapse.url,
                    "MATRIX_ACCESS_TOKEN": bot.token,
                    "MATRIX_ALLOWED_USERS": user.user_id,
                }
                config = load_config(HermesPaths(home), env)
                config.agent.cwd = str(home)
                gateway = build_gateway(config)
                runner = await gateway.start(local=False)
                listener = Listener(synapse, user, bot.user_id)
                try:
                    rooms = await _rooms(synapse, user, bot, rooms_n)
                    await listener.start()
                    await _measure(synapse, user, rooms, listener, 1.0, [])  # warm-up
                    before = len(model.requests)
                    latencies: list[float] = []
                    cpu = time.process_time()
                    total, elapsed = await _measure(
                        synapse, user, rooms, listener, seconds, latencies
                    )
                    cpu = time.process_time() - cpu
                    turns = len(model.requests) - before
                finally:
                    await listener.stop()
                    await gateway.stop()
                del runner
        # Synapse alone: a new bot account that only echoes, same rooms shape.
        echo = await synapse.register()
        rooms2 = await _rooms(synapse, user, echo, rooms_n, join=True)
        listener2 = Listener(synapse, user, echo.user_id)
        stop_echo = await _echo_bot(synapse, echo, user.user_id)
        await listener2.start()
        try:
            await _measure(synapse, user, rooms2, listener2, 1.0, [])
            alone: list[float] = []
            total2, elapsed2 = await _measure(synapse, user, rooms2, listener2, seconds, alone)
        finally:
            await listener2.stop()
            await stop_echo()
    finally:
        await synapse.close()
    print(f"Matrix end to end against Synapse, {rooms_n} rooms, zero-latency model")
    _summary("gateway (Hermes TUI)", total, elapsed, latencies)
    per = cpu / max(total, 1) * 1000
    print(f"  {'':<22} model turns {turns} (target >= 50 messages/s)")
    print(
        f"  {'':<22} our process: {per:.1f} ms CPU per message (gateway, model fake and"
        f" bench client together): at most {1000 / max(per, 0.001):.0f} messages/s on one core"
    )
    _summary("Synapse alone (echo)", total2, elapsed2, alone)


async def _rooms(
    synapse: Synapse, user: MatrixUser, bot: MatrixUser, n: int, *, join: bool = False
) -> list[str]:
    """``n`` direct chats of ``user`` with ``bot``; the gateway joins on invite by itself."""
    rooms = await asyncio.gather(
        *(
            synapse.create_room(user, invite=[bot.user_id], direct=True, name=secrets.token_hex(3))
            for _ in range(n)
        )
    )
    if join:
        await asyncio.gather(*(synapse.join(bot, r) for r in rooms))
    deadline = time.monotonic() + 60
    for room in rooms:
        while True:
            data = await synapse.call(
                "GET", f"/_matrix/client/v3/rooms/{room}/joined_members", user.token
            )
            if bot.user_id in data.get("joined", {}):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the bot did not join {room}")
            await asyncio.sleep(0.05)
    return list(rooms)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.rooms, args.seconds))


if __name__ == "__main__":
    main()
