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
