"""A 500-turn chat against a model with an 8k context: it must run to the end.

The fake OpenAI server (in this process, over a real socket) reports an 8,192-token window in
``/v1/models`` and answers a longer prompt with OpenAI's 400 ``context_length_exceeded``.
Every fifth turn calls a tool. Prints the turns answered, the compressions, overflow errors,
the largest prompt the server saw and the time taken. ``--no-compression`` shows the same
chat with ``compression.enabled: false`` (the "before": it overflows and every later turn
fails).
Run: python bench/long_chat.py [--turns 500] [--no-compression]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _config import bench_config  # noqa: E402

from hermes_gateway import events as ev  # noqa: E402
from hermes_tui.assembly import build_gateway  # noqa: E402
from tests.fakes.openai_server import (  # noqa: E402
    FakeOpenAI,
    ScriptedReply,
    ToolCallSpec,
    prompt_tokens_of,
)

WINDOW = 8192


def message(turn: int) -> str:
    """Turns of varied length (about 40 to 400 tokens), deterministic."""
    words = 30 + (turn * 37) % 300
    return f"turn {turn}: " + " ".join(f"word{(turn * 7 + i) % 997}" for i in range(words))


async def run(turns: int, compression: bool) -> None:
    async with FakeOpenAI() as fake:
        fake.context_length = WINDOW
        config = bench_config(fake.base_url)
        config.compression.enabled = compression
        config.gateway.auto_title = False
        gateway = build_gateway(config)
        compressions: list[ev.ContextCompressed] = []
        errors: list[str] = []

        def watch(event: ev.GatewayEvent) -> None:
            if isinstance(event, ev.ContextCompressed):
                compressions.append(event)
            elif isinstance(event, ev.TurnFinished) and event.error:
                errors.append(event.error)

        gateway.bus.add_listener(watch)
        await gateway.start(local=True, adapters=[], status_file=False, offer_import=False)
        assert gateway.local is not None and gateway.runner is not None
        started = time.perf_counter()
        try:
            for turn in range(turns):
                if turn % 5 == 4:
                    fake.enqueue(
                        ScriptedReply(
                            tool_calls=[ToolCallSpec("terminal", {"command": f"echo {turn}"})]
                        )
                    )
                await gateway.local.submit(message(turn))
                await gateway.runner.wait_idle(60)
        finally:
            elapsed = time.perf_counter() - started
            await gateway.stop()
        sizes = [prompt_tokens_of(body) for body in fake.requests]
        failed = [e for e in compressions if e.error]
        print(f"compression:        {'on' if compression else 'off'} (window {WINDOW:,})")
        print(f"turns:              {turns}")
        print(
            f"model requests:     {len(fake.requests)} (+{len(fake.compression_requests)} summaries)"
        )
        print(f"compressions:       {len(compressions) - len(failed)} ({len(failed)} failed)")
        print(f"overflow errors:    {fake.overflows}")
        print(f"failed turns:       {len(errors)}")
        print(f"max prompt tokens:  {max(sizes):,} of {WINDOW:,}")
        print(f"time:               {elapsed:.1f} s ({1000 * elapsed / turns:.1f} ms per turn)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--no-compression", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.turns, not args.no_compression))


if __name__ == "__main__":
    main()
