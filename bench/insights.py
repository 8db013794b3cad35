"""``/insights`` over a big home (tests/homes.py; default size ``search``: 1,000 sessions,
1,000,000 messages over a year), read the way the command reads it (``read_activity_at``: its
own read-only connection, in a thread).

Times the operator's view (all chats) and one chat's view for windows of 1, 7, 30, 90 and 365
days, each several times, and the event loop's longest stall meanwhile (the query runs in a
thread, so the loop should stay free). Prints the figures; asserts nothing.
Run: PYTHONPATH=. python bench/insights.py [size]   (the home is built once, cached in /tmp)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hermes_gateway.store import SessionStore, default_db_path  # noqa: E402
from hermes_gateway.store.insights import read_activity_at  # noqa: E402
from tests.homes import cached_home  # noqa: E402

REPEAT = 5
WINDOWS = (1, 7, 30, 90, 365)


async def lag_probe(stop: asyncio.Event, worst: list[float]) -> None:
    """The longest gap between two 5 ms ticks of the loop."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        worst[0] = max(worst[0], now - last - 0.005)
        last = now


async def main(size: str) -> None:
    t0 = time.perf_counter()
    manifest = await asyncio.to_thread(cached_home, size)  # builds with its own loop
    print(
        f"home: {len(manifest.sessions)} sessions, {manifest.messages:,} messages "
        f"({manifest.home}, ready in {time.perf_counter() - t0:.1f} s)"
    )
    store = await SessionStore.open(default_db_path(manifest.home_path))
    busiest = max(manifest.chats, key=lambda k: sum(s.messages for s in manifest.by_key(k)))
    idle_stop, idle_worst = asyncio.Event(), [0.0]
    idle = asyncio.create_task(lag_probe(idle_stop, idle_worst))
    await asyncio.sleep(5)  # the machine's own noise, for comparison
    idle_stop.set()
    await idle
    stop, worst = asyncio.Event(), [0.0]
    probe = asyncio.create_task(lag_probe(stop, worst))
    try:
        print(f"{'window':>8} {'scope':>10} {'p50 ms':>8} {'max ms':>8} {'messages':>10}")
        for days in WINDOWS:
            for scope, key in (("all chats", None), ("one chat", busiest)):
                times = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    since = time.time() - days * 86400
                    activity = await asyncio.to_thread(
                        read_activity_at, store.path, since, key, None, 8
                    )
                    times.append(time.perf_counter() - started)
                print(
                    f"{days:>7}d {scope:>10} {statistics.median(times) * 1000:>8.1f} "
                    f"{max(times) * 1000:>8.1f} {activity.messages:>10,}"
                )
    finally:
        stop.set()
        await probe
        await store.close()
    print(
        f"longest event-loop stall while querying: {worst[0] * 1000:.1f} ms "
        f"(idle, same machine: {idle_worst[0] * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "search"))
