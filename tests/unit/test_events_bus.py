"""The event bus never stalls the gateway: bounded queues, drop-oldest, explicit notice."""

from __future__ import annotations

import asyncio

from hermes_gateway import events as ev


def delta(i: int) -> ev.AgentDelta:
    return ev.AgentDelta(session_key="k", turn_id=1, text=str(i))


async def test_fan_out_in_order():
    bus = ev.EventBus()
    a, b = bus.subscribe(name="a"), bus.subscribe(name="b")
    for i in range(3):
        bus.publish(delta(i))
    assert [(await a.get()).text for _ in range(3)] == ["0", "1", "2"]
    assert [(await b.get()).text for _ in range(3)] == ["0", "1", "2"]


async def test_slow_subscriber_drops_oldest_and_is_told():
    bus = ev.EventBus()
    slow = bus.subscribe(maxsize=5)
    fast = bus.subscribe(maxsize=1000)
    for i in range(12):
        bus.publish(delta(i))  # never blocks, never raises
    first = await slow.get()
    assert isinstance(first, ev.EventsDropped) and first.count == 7
    assert [(await slow.get()).text for _ in range(5)] == ["7", "8", "9", "10", "11"]
    assert slow.dropped == 7 and fast.dropped == 0 and fast.pending() == 12


async def test_predicate_filters_and_waiting_reader_wakes():
    bus = ev.EventBus()
    only_lag = bus.subscribe(predicate=lambda e: isinstance(e, ev.LoopLag))
    reader = asyncio.create_task(only_lag.get())
    await asyncio.sleep(0)
    bus.publish(delta(1))
    bus.publish(ev.LoopLag(lag=0.2))
    got = await asyncio.wait_for(reader, 1)
    assert isinstance(got, ev.LoopLag) and only_lag.pending() == 0


async def test_close_ends_iteration_and_unsubscribes():
    bus = ev.EventBus()
    sub = bus.subscribe()
    seen = []

    async def read():
        async for event in sub:
            seen.append(event)

    task = asyncio.create_task(read())
    bus.publish(delta(1))
    await asyncio.sleep(0.01)
    sub.close()
    await asyncio.wait_for(task, 1)
    bus.publish(delta(2))
    assert [e.text for e in seen] == ["1"]


def test_broken_listener_does_not_break_publishing():
    bus = ev.EventBus()
    got = []
    bus.add_listener(lambda e: 1 / 0)
    remove = bus.add_listener(got.append)
    bus.publish(delta(1))
    remove()
    bus.publish(delta(2))
    assert len(got) == 1 and bus.published == 2
