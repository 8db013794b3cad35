"""Benchmark of the session store's hot path, over a temporary database.

Prints appends/s and p50/p99 latency of ``append_messages`` with one message, of
``get_active_session``, and of a full-text ``search`` once the table holds a few thousand
messages. It asserts nothing: it is for comparing figures before and after a change.

Run: ``python bench/bench_store.py [--appends N] [--searches N]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from hermes_gateway.store import SessionStore, StoredMessage

WORDS = (
    "deploy server config token latency python sqlite gateway telegram discord "
    "cron backup restore message session search index wal journal migrate"
).split()


def _text(i: int) -> str:
    return " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 7, 11, 13)) + f" item{i}"


def _report(name: str, samples: list[float]) -> None:
    samples_ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(samples_ms)
    p99 = samples_ms[min(len(samples_ms) - 1, int(len(samples_ms) * 0.99))]
    rate = len(samples) / sum(samples)
    print(f"{name:<34} {rate:>9.0f} ops/s   p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")


async def _time(n: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    samples: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        await op(i)
        samples.append(time.perf_counter() - t0)
    return samples


async def main(appends: int, searches: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await SessionStore.open(Path(tmp) / "bench.db")
        try:
            session = await store.create_session(
                "local:dm:bench", platform="local", chat_type="dm", chat_id="bench"
            )

            async def append(i: int) -> object:
                return await store.append_messages(
                    session.id, [StoredMessage("user", _text(i), prompt_tokens=3)]
                )

            async def active(_: int) -> object:
                return await store.get_active_session("local:dm:bench")

            async def search(i: int) -> object:
                # Two words that occur together in many messages: a realistic, non-empty result.
                return await store.search(" ".join(_text(i).split()[:2]))

            await _time(50, append)  # warm the statement cache and the file
            _report("append_messages(1 message)", await _time(appends, append))
            _report("get_active_session", await _time(appends, active))

            async def turn(i: int) -> object:
                await store.get_active_session("local:dm:bench")
                await store.append_messages(session.id, [StoredMessage("user", _text(i))])
                return await store.append_messages(
                    session.id, [StoredMessage("assistant", _text(i + 1), completion_tokens=9)]
                )

            _report("turn (active + 2 appends)", await _time(appends // 2, turn))
            count = (await store.get_session(session.id)).message_count  # type: ignore[union-attr]
            hits = len(await store.search(" ".join(_text(1).split()[:2]), limit=10_000))
            _report(f"search (2 words, {count} msgs, top 20)", await _time(searches, search))
            print(f"  (a search query matches ~{hits} messages)")
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--searches", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.appends, args.searches))
