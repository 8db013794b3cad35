"""What the command guard costs: a slash command's latency with and without a platform
message id (with one, its receipt is written before it runs and updated after: the
``command_receipts`` writes of ``runner/command_guard.py``), and a replayed command's.

The command is ``/help`` (no model call, a reply sent), handed to the runner as an adapter
would, to a platform that delivers into memory. Run: python bench/commands.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _config import bench_config  # noqa: E402
from pipeline import BenchPlatform, pct  # noqa: E402

from hermes_gateway.models import MessageEvent, SessionSource  # noqa: E402
from hermes_tui.assembly import build_gateway  # noqa: E402

COUNT = 500


async def measure() -> None:
    config = bench_config("http://127.0.0.1:9/v1")  # never called: /help asks no model
    gateway = build_gateway(config)
    platform = BenchPlatform()
    runner = await gateway.start(local=False, adapters=[platform])
    source = SessionSource("bench", "chat", user_id="u", user_name="bench")

    async def run(ids: list[str | None]) -> list[float]:
        times = []
        for message_id in ids:
            start = time.perf_counter()
            await runner.handle(MessageEvent(text="/help", source=source, message_id=message_id))
            times.append(time.perf_counter() - start)
        return times

    try:
        await run([None] * 20)  # warm up
        platform.delivered = 0
        bare = await run([None] * COUNT)
        guarded = await run([f"m{i}" for i in range(COUNT)])
        replayed = await run([f"m{i}" for i in range(COUNT)])
    finally:
        await gateway.stop()
    for name, times in (
        ("no message id (unguarded)", bare),
        ("with a message id (receipt)", guarded),
        ("the same ids again (dropped)", replayed),
    ):
        print(f"{name:30} p50 {pct(times, 0.5):6.2f} ms  p99 {pct(times, 0.99):6.2f} ms")
    print(f"replies delivered: {platform.delivered} (expected {2 * COUNT}: none for a repeat)")


if __name__ == "__main__":
    asyncio.run(measure())
