"""Memory of a gateway that has served 10,000 chats: flat once idle sessions are evicted.

Every chat sends a message through the whole pipeline (runner, store, agent over the openai
SDK, delivery) against the zero-latency fake model in its own process (titles off: one model
call per chat, so 10,000 chats take minutes, not a quarter of an hour, on a shared machine). The resident
memory (RSS) of this process is printed as the chats pile up, once with the session cache
bounded (the default: 512 live sessions, idle ones swept after 30 minutes) and once, in a
separate process, unbounded, as the gateway was before. Target: flat with eviction, under
150 MB after 10,000 chats.
Run: python bench/many_chats_memory.py [--chats 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _config import BenchPlatform, bench_config  # noqa: E402

from hermes_gateway import events as ev  # noqa: E402
from hermes_gateway.models import MessageEvent, SessionSource  # noqa: E402
from hermes_tui.assembly import build_gateway  # noqa: E402

WAVE = 50
"""Chats served at once."""
TEXT = "Please keep this in mind for later: " + "the quick brown fox jumps over it. " * 12


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def serve(base_url: str, chats: int, evict: bool) -> None:
    config = bench_config(base_url)
    config.gateway.auto_title = False
    logging.getLogger("hermes_gateway.watchdog").setLevel(logging.ERROR)  # a busy machine
    gateway = build_gateway(config)
    platform = BenchPlatform()
    await gateway.start(local=False, adapters=[platform])
    runner = gateway.runner
    assert runner is not None
    registry = runner.registry
    if not evict:
        registry.max_live = 10**9  # as before: every chat's runtime stays in memory
        registry.idle_evict = float("inf")
    loop = asyncio.get_running_loop()
    done: dict[str, asyncio.Future[None]] = {}

    def on_event(event: ev.GatewayEvent) -> None:
        if isinstance(event, ev.TurnFinished):
            fut = done.pop(event.session_key, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    gateway.bus.add_listener(on_event)

    async def say(chat: int, text: str) -> None:
        source = SessionSource("bench", f"chat{chat}", user_id=f"u{chat}", user_name="bench")
        fut = loop.create_future()
        done[source.session_key] = fut
        await runner.handle(MessageEvent(text=text, source=source))
        await asyncio.wait_for(fut, 30)

    async def chat(n: int) -> None:
        await say(n, f"{TEXT} ({n})")

    gc.collect()
    label = "with eviction" if evict else "without eviction"
    print(f"[{label}] after start: RSS {rss_mb():.1f} MB")
    start = time.perf_counter()
    marks = {chats // 10, chats // 4, chats // 2, 3 * chats // 4, chats}
    for first in range(0, chats, WAVE):
        await asyncio.gather(*(chat(n) for n in range(first, min(chats, first + WAVE))))
        served = min(chats, first + WAVE)
        if served in marks:
            gc.collect()
            print(
                f"[{label}] {served:>6} chats served: RSS {rss_mb():6.1f} MB, "
                f"{len(registry.sessions):>5} live sessions, "
                f"{time.perf_counter() - start:5.1f} s"
            )
    await runner.wait_idle(30)
    if evict:
        swept = registry.evict_idle(now=time.monotonic() + registry.idle_evict + 1)
        gc.collect()
        print(
            f"[{label}] after the idle sweep: {swept} dropped, {len(registry.sessions)} live, "
            f"RSS {rss_mb():.1f} MB"
        )
        await say(0, "Still there?")  # an evicted chat answers from its stored history
        print(f"[{label}] chat 0 answered again after eviction: {platform.delivered} answers")
    await gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-evict", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.base_url:  # one measurement, in a process of its own
        asyncio.run(serve(args.base_url, args.chats, evict=not args.no_evict))
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().split()[1]
        for extra in ([], ["--no-evict"]):
            subprocess.run(
                [sys.executable, __file__, "--chats", str(args.chats), "--base-url", base_url]
                + extra,
                check=True,
            )
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
