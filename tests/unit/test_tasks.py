"""Tests for hermes_gateway.tasks: background tasks stay referenced and failures are logged."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from hermes_gateway.tasks import TaskSet


async def test_spawned_task_is_kept_until_done_then_forgotten() -> None:
    tasks = TaskSet("test")
    release = asyncio.Event()
    done: list[str] = []

    async def work() -> None:
        await release.wait()
        done.append("ok")

    tasks.spawn(work(), name="work")
    gc.collect()  # the set, not the caller, keeps the task alive
    assert len(tasks) == 1
    release.set()
    await asyncio.sleep(0.01)
    assert done == ["ok"] and len(tasks) == 0


async def test_failure_is_logged_with_the_task_name(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("test")

    async def boom() -> None:
        raise RuntimeError("kaput")

    with caplog.at_level(logging.ERROR, logger="hermes_gateway.tasks"):
        tasks.spawn(boom(), name="boomer")
        await asyncio.sleep(0.01)
    assert "test: background task boomer failed" in caplog.text
    assert "kaput" in caplog.text


async def test_cancel_all_waits_for_the_rest() -> None:
    tasks = TaskSet()
    task = tasks.spawn(asyncio.sleep(60))
    await tasks.cancel_all()
    assert task.cancelled() and len(tasks) == 0


async def test_cancel_all_with_a_timeout_ends_even_if_a_task_ignores_it() -> None:
    tasks = TaskSet()
    stop_ignoring = asyncio.Event()

    async def stubborn() -> None:
        while not stop_ignoring.is_set():
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                continue  # a task that will not stop (a blocked library call)

    task = tasks.spawn(stubborn())
    polite = tasks.spawn(asyncio.sleep(60))
    await asyncio.sleep(0)
    await tasks.cancel_all(timeout=0.05)  # returns: the stop of an adapter cannot hang
    assert polite.cancelled() and not task.done()
    stop_ignoring.set()
    task.cancel()
    await asyncio.wait({task})


async def test_drain_lets_the_tasks_finish_without_cancelling_them() -> None:
    tasks = TaskSet()
    stored: list[str] = []

    async def store() -> None:
        await asyncio.sleep(0.01)
        stored.append("message")

    task = tasks.spawn(store())
    await tasks.drain(5)
    assert stored == ["message"] and not task.cancelled() and len(tasks) == 0
