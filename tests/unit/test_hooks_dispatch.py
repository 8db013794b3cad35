"""The hook dispatcher on its own: Hermes Agent's matching (exact, then ``base:*``), each hook
its own copy of the context, order kept, a bounded queue that reports what it dropped, and a
stop that lets queued events through first."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from hermes_gateway.hooks.dispatch import HookDispatcher
from hermes_gateway.hooks.events import HookFailed, HookInfo
from hermes_gateway.hooks.loader import LoadedHook


def hook(name: str, events: tuple[str, ...], fn: Any, timeout: float = 2.0) -> LoadedHook:
    return LoadedHook(HookInfo(name, f"/hooks/{name}", events, "", timeout), fn)


async def test_matching_order_and_private_contexts() -> None:
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def greedy(event_type: str, context: dict[str, Any]) -> None:
        seen.append(("greedy", event_type, dict(context)))
        context["touched"] = True  # must not reach the next hook

    async def exact(event_type: str, context: dict[str, Any]) -> dict[str, str]:
        seen.append(("exact", event_type, dict(context)))
        return {"decision": "allow"}

    d = HookDispatcher(
        [hook("greedy", ("command:*",), greedy), hook("exact", ("command:new",), exact)],
        lambda failure: None,
    )
    try:
        assert [h.info.name for h in d.listening("command:new")] == ["exact", "greedy"]
        assert [h.info.name for h in d.listening("command:help")] == ["greedy"]
        assert d.listening("command") == [] and d.listening("agent:start") == []
        results = await d.run("command:new", {"command": "new"})
    finally:
        await d.stop()
    assert results == [{"decision": "allow"}]
    assert seen == [
        ("exact", "command:new", {"command": "new"}),
        ("greedy", "command:new", {"command": "new"}),
    ]


async def test_a_full_queue_drops_the_oldest_and_says_so() -> None:
    release = threading.Event()
    got: list[int] = []

    def slow(event_type: str, context: dict[str, Any]) -> None:
        release.wait(5)
        got.append(context["n"])

    failures: list[HookFailed] = []
    d = HookDispatcher([hook("slow", ("agent:step",), slow)], failures.append, queue_limit=3)
    d.start()
    try:
        for n in range(6):
            d.notify("agent:step", {"n": n})
            await asyncio.sleep(0)  # the worker takes the first one at once
        release.set()
        await asyncio.wait_for(d.idle(), 5)
    finally:
        await d.stop()
    assert got[0] == 0 and got[-3:] == [3, 4, 5] and len(got) == 4
    assert [(f.kind, f.hook) for f in failures] == [("dropped", "(hooks)")]
    assert failures[0].error.startswith("1 hook event(s) dropped")


async def test_stop_lets_queued_events_through() -> None:
    got: list[str] = []
    d = HookDispatcher(
        [hook("log", ("agent:end",), lambda e, c: got.append(c["text"]))], lambda f: None
    )
    d.start()
    for text in ("a", "b", "c"):
        d.notify("agent:end", {"text": text})
    await d.stop()
    assert got == ["a", "b", "c"]
