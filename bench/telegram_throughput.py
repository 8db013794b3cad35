"""Telegram messages per second end to end, across many chats, with a zero-latency model.

The whole production path runs: FakeTelegram answers the real python-telegram-bot's long
poll, the adapter normalises each update, the runner stores it and runs the agent against a
scripted OpenAI-compatible server that answers at once, and the answer goes back through the
per-chat rate gate and PTB to the fake.

The gateway runs alone in this process, as in production; the fake Telegram (with the
simulated users) and the fake model each run in their own process, so their CPU time is
not billed to the gateway. Two phases, 50 chats at once by default:

* throughput: every chat is a closed loop (a user writes again as soon as the answer
  arrives); the rate gate is set to the per-chat limit the fake enforces (``--per-chat``);
* latency: every chat writes once a second (about 50 messages/s in all) at random phases,
  so the rate gate never holds an answer back and the round trip is exactly what the
  gateway adds to a model that answers instantly.

Prints, for both phases, messages/s, round-trip p50/p99, the agent turn's share (the model
call through the openai SDK plus storing the answer) and the gateway process's CPU time per
message (a figure that holds up on a busy machine). It asserts nothing.
Run: ``python bench/telegram_throughput.py [--chats 50] [--seconds 5] [--per-chat 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hermes_gateway.config import load_config  # noqa: E402
from hermes_gateway.events import PlatformStatus, TurnFinished  # noqa: E402
from hermes_gateway.paths import HermesPaths  # noqa: E402
from hermes_tui.assembly import build_gateway  # noqa: E402
from tests.fakes.telegram_server import FakeTelegram, SentMessage  # noqa: E402

FIRST_CHAT = 10_000


# ------------------------------------------------------------------ the users' side (process 2)


class BenchTelegram(FakeTelegram):
    """The fake plus a queue per chat that receives the time each bot message is created."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: dict[int, asyncio.Queue[float]] = defaultdict(asyncio.Queue)

    def _record(self, message: dict[str, Any], *args: Any, **kwargs: Any) -> SentMessage:
        record = super()._record(message, *args, **kwargs)
        self.posted[record.chat_id].put_nowait(time.monotonic())
        return record


async def _chat(
    tg: BenchTelegram, chat: int, deadline: float, pause: float, rtts: list[float]
) -> int:
    """One user: write, wait for the answer, wait ``pause`` after the last write, repeat."""
    answers = tg.posted[chat]
    done = 0
    if pause:
        await asyncio.sleep(random.uniform(0, pause))  # users do not write in lockstep
    while time.monotonic() < deadline:
        sent = time.monotonic()
        tg.inject_message(chat, f"message {done} in chat {chat}")
        answered = await asyncio.wait_for(answers.get(), timeout=30)
        rtts.append(answered - sent)
        done += 1
        if pause:
            await asyncio.sleep(max(0.0, sent + pause - time.monotonic()))
    return done


async def _phase(tg: BenchTelegram, chats: list[int], seconds: float, pause: float) -> dict:
    rtts: list[float] = []
    started = time.monotonic()
    counts = await asyncio.gather(*(_chat(tg, c, started + seconds, pause, rtts) for c in chats))
    ended = time.monotonic()
    return {
        "messages": sum(counts),
        "elapsed": ended - started,
        "rtts": rtts,
        "window": [started, ended],
    }


async def drive(chats: int, seconds: float, per_chat: float) -> None:
    """Run the fake Telegram and the users; talk to the gateway's process over stdio."""
    async with BenchTelegram() as tg:
        tg.set_rate_limit(per_chat_per_second=per_chat, retry_after=1)
        print(f"READY {tg.base_url} {tg.base_file_url} {tg.token}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # "GO": the bot is polling
        ids = [FIRST_CHAT + i for i in range(chats)]
        await _phase(tg, ids, 0.0, 0.0)  # warm-up: each chat's first message opens a session
        await asyncio.sleep(1.0 / per_chat)
        throughput = await _phase(tg, ids, seconds, 0.0)
        await asyncio.sleep(1.0)
        latency = await _phase(tg, ids, seconds, 1.0)
        refused = sum(1 for method, _ in tg.calls if method == "sendMessage") - len(tg.sent)
        print(json.dumps({"throughput": throughput, "latency": latency, "refused": refused}))
        sys.stdout.flush()
        await loop.run_in_executor(None, sys.stdin.readline)  # stay up until the bot stopped


# ------------------------------------------------------------------ the gateway's side


async def _spawn(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=str(ROOT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
    if not line or line[0] != "READY":
        raise RuntimeError(f"{args[0]} did not start: {line}")
    return proc, line[1:]


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(chats: int, seconds: float, per_chat: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    model, (model_url,) = await _spawn("-m", "tests.fakes.openai_server", "--port", "0")
    users, (base_url, file_url, token) = await _spawn(
        __file__, "--driver", f"--chats={chats}", f"--seconds={seconds}", f"--per-chat={per_chat}"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            env = {
                "HERMES_HOME": str(home),
                "OPENAI_BASE_URL": model_url,
                "OPENAI_API_KEY": "test-key",
                "HERMES_MODEL": "fake-model",
                "TELEGRAM_BOT_TOKEN": token,
                "TELEGRAM_BASE_URL": base_url,
                "TELEGRAM_BASE_FILE_URL": file_url,
                "GATEWAY_ALLOW_ALL_USERS": "true",
            }
            config = load_config(HermesPaths(home), env)
            config.agent.cwd = str(home)
            t = config.platforms.telegram
            t.rate_interval = 1.0 / per_chat  # the fake's limit
            t.global_rate = 0.0  # the fake enforces no bot-wide limit
            t.poll_timeout = 5.0
            gateway = build_gateway(config)
            turns: list[tuple[float, float]] = []  # (when, agent turn seconds)

            connected = asyncio.Event()

            def on_event(event: object) -> None:
                if isinstance(event, TurnFinished):
                    turns.append((time.monotonic(), event.duration))
                elif isinstance(event, PlatformStatus) and event.state == "connected":
                    connected.set()

            gateway.bus.add_listener(on_event)
            await gateway.start(local=False)
            cpu: list[tuple[float, float]] = []  # (monotonic, process CPU seconds)

            async def sample_cpu() -> None:
                while True:
                    cpu.append((time.monotonic(), time.process_time()))
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample_cpu())
            try:
                await asyncio.wait_for(connected.wait(), 20)
                assert users.stdin is not None and users.stdout is not None
                users.stdin.write(b"GO\n")
                await users.stdin.drain()
                result = json.loads(
                    await asyncio.wait_for(users.stdout.readline(), 4 * seconds + 60)
                )
            finally:
                sampler.cancel()
                await gateway.stop()
    finally:
        if users.stdin is not None and users.returncode is None:
            users.stdin.write(b"BYE\n")
            await users.stdin.drain()
        for proc in (users, model):
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
    print(f"{chats} chats, rate gate {per_chat:g} sends/s per chat (the fake's limit)")
    for name, label in (("throughput", "closed loop"), ("latency", "1 msg/s per chat")):
        phase = result[name]
        rtts = phase["rtts"]
        rate = phase["messages"] / phase["elapsed"]
        start, end = phase["window"]
        agent = [d for at, d in turns if start <= at <= end]
        inside = [c for at, c in cpu if start <= at <= end]
        cpu_ms = 1000 * (inside[-1] - inside[0]) / max(1, phase["messages"]) if inside else 0.0
        print(
            f"{name:<10} ({label}): {rate:6.1f} messages/s, round trip p50 "
            f"{statistics.median(rtts) * 1000:.1f} ms p99 {_ms(rtts, 0.99):.1f} ms, "
            f"of which the agent turn p50 {statistics.median(agent) * 1000:.1f} ms; "
            f"gateway CPU {cpu_ms:.2f} ms/message"
        )
    print(f"sends refused with 429: {result['refused']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--per-chat", type=float, default=20.0, help="sends per second per chat (fake and gate)"
    )
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        asyncio.run(drive(args.chats, args.seconds, args.per_chat))
    else:
        asyncio.run(run(args.chats, args.seconds, args.per_chat))
