"""Gateway pipeline overhead: platform -> runner -> agent -> store -> delivery.

Against a zero-latency scripted model (the fake OpenAI server, in its own process), it
measures (1) the bare openai SDK round trip, (2) the same turn through the whole gateway, one
at a time, and (3) messages per second with 20 chats at once. Added latency = gateway turn
minus bare SDK call at the same percentile. Targets: p50 under 5 ms added per turn.
Run: python bench/pipeline.py
"""

from __future__ import annotations

import asyncio
import resource
import statistics
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

SEQUENTIAL = 300
CHATS, PER_CHAT = 20, 15


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, float] = {}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def bare_sdk(base_url: str) -> list[float]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="test-key", max_retries=0)
    times = []
    messages = [{"role": "system", "content": "You are Hermes."}]
    cpu_start = cpu_seconds()
    for i in range(SEQUENTIAL):
        messages.append({"role": "user", "content": f"message {i}"})
        start = time.perf_counter()
        stream = await client.chat.completions.create(
            model="fake-model",
            messages=messages[-20:],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in stream:
            pass
        times.append(time.perf_counter() - start)
        messages.append({"role": "assistant", "content": f"echo: message {i}"})
    CPU["bare"] = (cpu_seconds() - cpu_start) / SEQUENTIAL
    await client.close()
    return times


async def through_gateway(base_url: str) -> tuple[list[float], float, int]:
    config = bench_config(base_url)
    gateway = build_gateway(config)
    platform = BenchPlatform()
    await gateway.start(local=False, adapters=[platform])
    runner = gateway.runner
    done: dict[str, asyncio.Future] = {}

    def on_event(event: ev.GatewayEvent) -> None:
        if isinstance(event, ev.TurnFinished):
            fut = done.pop(event.session_key, None)
            if fut is not None and not fut.done():
                fut.set_result(event)

    gateway.bus.add_listener(on_event)
    loop = asyncio.get_running_loop()

    async def one(chat: str, text: str) -> float:
        source = SessionSource("bench", chat, user_id="u", user_name="bench")
        fut = loop.create_future()
        done[source.session_key] = fut
        start = time.perf_counter()
        await runner.handle(MessageEvent(text=text, source=source))
        await fut
        return time.perf_counter() - start

    cpu_start = cpu_seconds()
    times = [await one(f"seq{i // 15}", f"message {i}") for i in range(SEQUENTIAL)]
    CPU["gateway"] = (cpu_seconds() - cpu_start) / SEQUENTIAL

    async def chat_worker(c: int) -> None:
        for i in range(PER_CHAT):
            await one(f"par{c}", f"message {i}")

    start = time.perf_counter()
    await asyncio.gather(*(chat_worker(c) for c in range(CHATS)))
    elapsed = time.perf_counter() - start
    await gateway.stop()
    return times, CHATS * PER_CHAT / elapsed, platform.delivered


async def measure(base_url: str) -> None:
    bare = await bare_sdk(base_url)
    gw_times, rate, delivered = await through_gateway(base_url)
    print(f"bare SDK round trip:   p50 {pct(bare, 0.5):.2f} ms  p99 {pct(bare, 0.99):.2f} ms")
    print(
        f"through the gateway:   p50 {pct(gw_times, 0.5):.2f} ms  p99 {pct(gw_times, 0.99):.2f} ms"
    )
    print(
        f"added by the gateway:  p50 {pct(gw_times, 0.5) - pct(bare, 0.5):.2f} ms  "
        f"p99 {pct(gw_times, 0.99) - pct(bare, 0.99):.2f} ms  (mean "
        f"{(statistics.mean(gw_times) - statistics.mean(bare)) * 1000:.2f} ms)"
    )
    print(
        f"CPU per turn:          bare SDK {CPU['bare'] * 1000:.2f} ms, "
        f"through the gateway {CPU['gateway'] * 1000:.2f} ms"
    )
    print(
        f"throughput, {CHATS} chats at once: {rate:.0f} messages/s ({delivered} answers delivered)"
    )


def main() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        asyncio.run(measure(proc.stdout.readline().split()[1]))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
