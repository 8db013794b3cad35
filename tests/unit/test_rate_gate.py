"""The per-chat rate gate: order, pacing, 429 retries without duplicates, coalescing, close."""

from __future__ import annotations

import asyncio
import time

import pytest

from hermes_gateway.delivery.errors import GateClosed, RetryAfter
from hermes_gateway.delivery.rate_gate import RateGate

TOL = 0.002  # asyncio timers may fire a hair early relative to time.monotonic


class Recorder:
    """Ops that record when they ran; ``fail`` maps a label to errors to raise first."""

    def __init__(self) -> None:
        self.effects: list[str] = []  # operations that took effect
        self.attempts: list[str] = []
        self.starts: dict[str, list[float]] = {}
        self.fail: dict[str, list[BaseException]] = {}

    def op(self, label: str, result: object = None):
        async def run() -> object:
            self.attempts.append(label)
            self.starts.setdefault(label, []).append(time.monotonic())
            errors = self.fail.get(label)
            if errors:
                raise errors.pop(0)
            await asyncio.sleep(0)
            self.effects.append(label)
            return label if result is None else result

        return run


async def test_ops_in_one_chat_run_in_submission_order() -> None:
    gate = RateGate(per_chat_interval=0)
    rec = Recorder()
    results = await asyncio.gather(*(gate.run("c", rec.op(f"m{i}")) for i in range(30)))
    assert results == [f"m{i}" for i in range(30)]
    assert rec.effects == [f"m{i}" for i in range(30)]
    await gate.aclose()


async def test_one_at_a_time_and_paced_start_to_start() -> None:
    interval = 0.02
    gate = RateGate(per_chat_interval=interval)
    running = 0
    peak = 0
    starts: list[float] = []

    async def op() -> None:
        nonlocal running, peak
        starts.append(time.monotonic())
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1

    await asyncio.gather(*(gate.run("chat", op) for _ in range(5)))
    assert peak == 1
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g >= interval - TOL for g in gaps), gaps
    await gate.aclose()


async def test_different_chats_run_concurrently() -> None:
    gate = RateGate(per_chat_interval=0.05)
    rec = Recorder()
    t0 = time.monotonic()
    await asyncio.gather(
        *(gate.run(chat, rec.op(f"{chat}{i}")) for i in range(3) for chat in ("a", "b", "c"))
    )
    elapsed = time.monotonic() - t0
    # Three ops per chat need two intervals; serialising all nine would need eight.
    assert 0.1 - TOL <= elapsed < 0.3
    for chat in "abc":
        assert [e for e in rec.effects if e[0] == chat] == [f"{chat}{i}" for i in range(3)]
    await gate.aclose()


async def test_global_rate_spaces_all_chats() -> None:
    # On the injected clock: a loaded machine's late wake-ups would otherwise show up as
    # short gaps between the ops' own timestamps although the gate spaced their slots.
    ft = FakeTime()
    gate = RateGate(per_chat_interval=0, global_per_second=100, clock=ft.clock, sleep=ft.sleep)
    starts: list[float] = []

    async def op() -> None:
        starts.append(ft.now)

    await asyncio.gather(*(gate.run(f"chat{i % 4}", op) for i in range(8)))
    assert len(starts) == 8
    gaps = [b - a for a, b in zip(sorted(starts), sorted(starts)[1:], strict=False)]
    assert all(g >= 0.01 - 1e-9 for g in gaps), gaps
    await gate.aclose()


async def test_retry_after_pauses_the_chat_and_repeats_the_same_op_once() -> None:
    gate = RateGate(per_chat_interval=0)
    rec = Recorder()
    rec.fail["send"] = [RetryAfter(0.03), RetryAfter(0.02)]
    t0 = time.monotonic()
    first = asyncio.ensure_future(gate.run("chat", rec.op("send")))
    later = asyncio.ensure_future(gate.run("chat", rec.op("after")))
    other = asyncio.ensure_future(gate.run("elsewhere", rec.op("other")))
    await other
    assert time.monotonic() - t0 < 0.03  # other chats are not paused (the pause is 0.05 s)
    assert rec.effects[0] == "other"
    assert await first == "send"
    assert await later == "after"
    assert rec.attempts.count("send") == 3
    assert rec.effects.count("send") == 1  # nothing sent twice
    assert rec.effects.index("send") < rec.effects.index("after")
    assert rec.starts["after"][0] - rec.starts["send"][0] >= 0.05 - TOL
    await gate.aclose()


async def test_retry_after_gives_up_after_max_retries() -> None:
    gate = RateGate(per_chat_interval=0, max_retries=2)
    rec = Recorder()
    rec.fail["x"] = [RetryAfter(0.001) for _ in range(5)]
    with pytest.raises(RetryAfter):
        await gate.run("chat", rec.op("x"))
    assert rec.attempts == ["x", "x", "x"]
    assert rec.effects == []
    assert await gate.run("chat", rec.op("next")) == "next"  # the chat keeps working
    await gate.aclose()


async def test_other_errors_reach_the_caller_and_the_queue_continues() -> None:
    gate = RateGate(per_chat_interval=0)
    rec = Recorder()
    rec.fail["bad"] = [ValueError("boom")]
    bad = asyncio.ensure_future(gate.run("chat", rec.op("bad")))
    good = asyncio.ensure_future(gate.run("chat", rec.op("good")))
    with pytest.raises(ValueError, match="boom"):
        await bad
    assert await good == "good"
    assert rec.attempts == ["bad", "good"]
    await gate.aclose()


async def test_coalescing_replaces_queued_op_and_shares_its_result() -> None:
    gate = RateGate(per_chat_interval=0)
    rec = Recorder()
    release = asyncio.Event()

    async def blocker() -> str:
        await release.wait()
        return "blocker"

    head = asyncio.ensure_future(gate.run("chat", blocker))
    await asyncio.sleep(0)  # the blocker has started: later ops queue behind it
    edits = [
        asyncio.ensure_future(gate.run("chat", rec.op(f"edit-v{i}"), coalesce_key="edit:1"))
        for i in range(1, 4)
    ]
    other = asyncio.ensure_future(gate.run("chat", rec.op("send"), coalesce_key=None))
    edit_other_msg = asyncio.ensure_future(gate.run("chat", rec.op("edit2"), coalesce_key="edit:2"))
    await asyncio.sleep(0)
    assert gate.queued("chat") == 3
    release.set()
    assert await head == "blocker"
    assert [await e for e in edits] == ["edit-v3"] * 3
    await other, await edit_other_msg
    assert rec.effects == ["edit-v3", "send", "edit2"]
    await gate.aclose()


async def test_started_op_is_not_coalesced() -> None:
    gate = RateGate(per_chat_interval=0)
    rec = Recorder()
    release = asyncio.Event()

    async def slow_edit() -> str:
        await release.wait()
        rec.effects.append("v1")
        return "v1"

    first = asyncio.ensure_future(gate.run("chat", slow_edit, coalesce_key="k"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(gate.run("chat", rec.op("v2"), coalesce_key="k"))
    await asyncio.sleep(0)
    release.set()
    assert (await first, await second) == ("v1", "v2")
    assert rec.effects == ["v1", "v2"]
    await gate.aclose()


async def test_cancelling_a_waiting_caller_withdraws_its_op() -> None:
    gate = RateGate(per_chat_interval=0.02)
    rec = Recorder()
    first = asyncio.ensure_future(gate.run("chat", rec.op("a")))
    second = asyncio.ensure_future(gate.run("chat", rec.op("b")))
    third = asyncio.ensure_future(gate.run("chat", rec.op("c")))
    await first
    second.cancel()
    assert await third == "c"
    assert second.cancelled()
    assert rec.attempts == ["a", "c"]
    await gate.aclose()


async def test_close_fails_waiting_ops_cleanly() -> None:
    gate = RateGate(per_chat_interval=10)
    rec = Recorder()
    await gate.run("chat", rec.op("sent"))
    waiting = [asyncio.ensure_future(gate.run("chat", rec.op(f"w{i}"))) for i in range(3)]
    await asyncio.sleep(0.01)
    await gate.aclose()
    for w in waiting:
        with pytest.raises(GateClosed):
            await w
    with pytest.raises(GateClosed):
        await gate.run("chat", rec.op("late"))
    assert rec.attempts == ["sent"]
    assert gate.closed
    gate.close()  # idempotent


async def test_close_interrupts_a_chat_paused_by_retry_after() -> None:
    gate = RateGate(per_chat_interval=0)
    rec = Recorder()
    rec.fail["x"] = [RetryAfter(30)]
    pending = asyncio.ensure_future(gate.run("chat", rec.op("x")))
    await asyncio.sleep(0.01)
    t0 = time.monotonic()
    await gate.aclose()
    with pytest.raises(GateClosed):
        await pending
    assert time.monotonic() - t0 < 0.5
    assert rec.effects == []


class FakeTime:
    """Injectable clock: sleeping advances time instantly, so long waits cost nothing."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_injected_clock_paces_deterministically() -> None:
    ft = FakeTime()
    gate = RateGate(per_chat_interval=1.0, clock=ft.clock, sleep=ft.sleep)
    times: list[float] = []
    fails = [RetryAfter(30)]

    async def op() -> None:
        times.append(ft.now)
        if len(times) == 2 and fails:
            raise fails.pop()

    await asyncio.gather(*(gate.run("chat", op) for _ in range(4)))
    # op1 at 1000, op2 at 1001 gets 429 -> retried at 1031, op3 at 1032, op4 at 1033.
    assert times == [1000.0, 1001.0, 1031.0, 1032.0, 1033.0]
    await gate.aclose()
