"""Full-text search over 1,000,000 messages (tests/homes.py, size ``search``: 1,000 sessions).

Times ``SessionStore.search`` (what F3 and ``/search`` call, limit 50) for varied queries, from
words in a sixteenth of all messages down to one message and none at all, prefixes, two-word
queries and searches restricted to one chat; each query several times. Prints p50/p95 over all
of them and per kind. Target: p50 < 50 ms.
Run: PYTHONPATH=. python bench/search_fts.py   (the home is built once, cached in /tmp)
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
from tests.homes import cached_home  # noqa: E402

REPEAT = 5
LIMIT = 50
TARGET_P50_MS = 50.0

QUERIES: dict[str, list[str]] = {
    "common word (~1/16 of messages)": ["deploy", "backup", "invoice", "kernel", "docker"],
    "very common word": ["please", "the", "thanks"],
    "rare word (~100 messages)": ["ref1234", "ref17", "ref3999"],
    "one message": ["quokkaflux"],
    "no hit": ["xylophone", "zzzq"],
    "two words": ["deploy migration", "nginx proxy", "birthday sister"],
    "prefix": ["depl*", "ngi*", "ref47*"],
    "tool output": ["uptime", "exit"],
}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def main() -> None:
    t0 = time.perf_counter()
    manifest = cached_home("search")
    print(
        f"home: {len(manifest.sessions)} sessions, {manifest.messages} messages "
        f"({manifest.home}, ready in {time.perf_counter() - t0:.1f} s)"
    )
    store = await SessionStore.open(default_db_path(manifest.home_path))
    try:
        busiest = max(manifest.chats, key=lambda k: sum(s.messages for s in manifest.by_key(k)))
        found = await store.search(manifest.search_word, limit=5)
        assert [h.message_id for h in found] == [manifest.search_message_id], found
        everything: list[float] = []
        rows = []
        for kind, queries in [*QUERIES.items(), ("in one chat (session_key)", ["deploy", "the"])]:
            times: list[float] = []
            hits = 0
            for query in queries:
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    if kind.startswith("in one chat"):
                        result = await store.search(query, limit=LIMIT, session_key=busiest)
                    else:
                        result = await store.search(query, limit=LIMIT)
                    times.append(time.perf_counter() - started)
                hits = max(hits, len(result))
            everything.extend(times)
            rows.append((kind, pct(times, 0.5), pct(times, 0.95), hits))
        for kind, p50, p95, hits in rows:
            print(f"  {kind:34s} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  ({hits} hits shown)")
        p50, p95 = pct(everything, 0.5), pct(everything, 0.95)
        verdict = "ok" if p50 < TARGET_P50_MS else "MISSED"
        print(
            f"search over {manifest.messages} messages: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
            f"max {max(everything) * 1000:.1f} ms, mean {statistics.mean(everything) * 1000:.1f} ms "
            f"({len(everything)} searches; target p50 < {TARGET_P50_MS:.0f} ms) {verdict}"
        )
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
