"""Two remote users on the fake Telegram try to reach each other's cron jobs.

Why: jobs had no owner, so any allowed user could list, remove, pause and run everyone's
jobs and make the bot post into any chat (``--deliver telegram:<anyone>``), by ``/cron``
or through the agent's ``cronjob`` tool. Every attempt below is one a curious or hostile
user would make; each one that gets through is a breach, and there must be none. The same
users can still do all of it to their own jobs, and the operator (terminal) sees all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hermes_cron.events import CronRunStarted
from hermes_cron.jobs import Job
from hermes_gateway import events as ev
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.test_telegram_adapter import (
    Harness,
    start_gateway,
    telegram_config,
    updates_handled,
)

ALICE, BOB, HOME = 42, 43, -100777


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[Harness]:
    async with FakeTelegram() as tg:
        config = telegram_config(hermes_home, fake_openai, tg, TELEGRAM_HOME_CHANNEL=str(HOME))
        harness = await start_gateway(config, tg, local=True)
        yield harness
        await harness.stop()


async def command(h: Harness, chat: int, text: str) -> str:
    before = len(h.tg.messages_in(chat))
    h.tg.inject_message(chat, text)
    await updates_handled(h.gw, h.tg)
    await h.tg.wait_for(lambda: len(h.tg.messages_in(chat)) > before)
    # The first message after it is the reply (a job's run may deliver right after it).
    return h.texts(chat)[before]


async def tool_call(h: Harness, fake: FakeOpenAI, chat: int, args: dict[str, object]) -> str:
    """Bob's model calls ``cronjob`` in his turn; returns what the tool answered."""
    turns = len(h.rec.of(ev.TurnFinished))
    fake.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("cronjob", args)]), ScriptedReply(text="done")
    )
    h.tg.inject_message(chat, "manage my schedules")
    await h.answered(turns + 1)
    tool_messages = [m for m in fake.requests[-1]["messages"] if m["role"] == "tool"]
    return str(tool_messages[-1]["content"])


async def jobs(h: Harness) -> list[Job]:
    assert h.gw.cron is not None
    return await h.gw.cron.list_jobs()


async def test_neither_user_reaches_the_others_jobs_or_chat(
    h: Harness, fake_openai: FakeOpenAI
) -> None:
    assert h.gw.cron is not None
    await command(h, ALICE, '/cron add --name "alice digest" "every 1h" summarise my inbox')
    await command(h, BOB, '/cron add --name "bob digest" "every 1h" summarise my feeds')
    by_name = {j.name: j for j in await jobs(h)}
    alice_job, bob_job = by_name["alice digest"], by_name["bob digest"]

    breaches: list[str] = []
    tried = 0
    own_listings: list[tuple[str, str]] = []

    async def attempt(label: str, run: Callable[[], object], breached: Callable[[str], bool]):
        nonlocal tried
        tried += 1
        answer = await run()  # type: ignore[misc]
        if await breached(str(answer)):  # type: ignore[misc]
            breaches.append(label)

    async def exists(job: Job) -> bool:
        return any(j.id == job.id for j in await jobs(h))

    async def enabled(job: Job) -> bool:
        return any(j.id == job.id and j.enabled for j in await jobs(h))

    def started(job: Job) -> bool:
        return any(e.job_id == job.id for e in h.rec.of(CronRunStarted))

    async def delivers_to(chat: int) -> bool:
        return any(str(chat) in j.deliver for j in await jobs(h))

    async def home_delivery() -> bool:
        return any(t == "telegram" for j in await jobs(h) for t in j.deliver.split(","))

    for attacker, me, victim in ((BOB, bob_job, alice_job), (ALICE, alice_job, bob_job)):
        who = "bob" if attacker == BOB else "alice"

        async def listed(answer: str, v: Job = victim) -> bool:
            return v.id in answer or v.name in answer

        await attempt(f"{who}: /cron list", lambda a=attacker: command(h, a, "/cron list"), listed)
        for verb in ("pause", "run", "remove"):
            for ref in (victim.id, victim.name):
                if not await exists(victim):
                    continue  # removed by an earlier attempt (before the fix): nothing to try

                async def hit(answer: str, v: Job = victim, verb: str = verb) -> bool:
                    if verb == "pause":
                        return not await enabled(v)
                    if verb == "run":
                        return started(v)
                    return not await exists(v)

                await attempt(
                    f"{who}: /cron {verb} {ref}",
                    lambda a=attacker, verb=verb, ref=ref: command(h, a, f"/cron {verb} {ref}"),
                    hit,
                )
        if await exists(victim):
            await h.gw.cron.pause(victim.id)  # the operator pauses it: may the other resume it?

            async def resumed(answer: str, v: Job = victim) -> bool:
                return await enabled(v)

            await attempt(
                f"{who}: /cron resume {victim.id}",
                lambda a=attacker, v=victim: command(h, a, f"/cron resume {v.id}"),
                resumed,
            )
        other = ALICE if attacker == BOB else BOB

        async def to_other(answer: str, o: int = other) -> bool:
            return await delivers_to(o)

        async def to_home(answer: str) -> bool:
            return await home_delivery()

        await attempt(
            f"{who}: /cron add --deliver telegram:{other}",
            lambda a=attacker, o=other: command(
                h, a, f'/cron add --deliver telegram:{o} "every 1h" you have been pwned'
            ),
            to_other,
        )
        await attempt(
            f"{who}: /cron add --deliver telegram (home channel)",
            lambda a=attacker: command(h, a, '/cron add --deliver telegram "every 1h" hi all'),
            to_home,
        )
        own_listings.append((me.id, await command(h, attacker, "/cron list")))

    # The agent's tool, in Bob's turn.
    async def tool_listed(answer: str) -> bool:
        return alice_job.id in answer

    await attempt(
        "bob: cronjob list",
        lambda: tool_call(h, fake_openai, BOB, {"action": "list"}),
        tool_listed,
    )
    for action in ("run", "remove"):
        if not await exists(alice_job):
            continue

        async def tool_hit(answer: str, action: str = action) -> bool:
            return started(alice_job) if action == "run" else not await exists(alice_job)

        await attempt(
            f"bob: cronjob {action}",
            lambda action=action: tool_call(
                h, fake_openai, BOB, {"action": action, "job_id": alice_job.id}
            ),
            tool_hit,
        )

    async def tool_to_alice(answer: str) -> bool:
        return await delivers_to(ALICE)

    await attempt(
        "bob: cronjob create deliver telegram:42",
        lambda: tool_call(
            h,
            fake_openai,
            BOB,
            {
                "action": "create",
                "schedule": "every 1h",
                "prompt": "spam",
                "deliver": "telegram:42",
            },
        ),
        tool_to_alice,
    )

    print(f"hostile cron: tried {tried}, got through {len(breaches)}: {breaches}")
    assert breaches == [], f"{len(breaches)} of {tried} attempts got through: {breaches}"
    # Each still sees their own jobs.
    assert all(job_id in listing for job_id, listing in own_listings)
    # Refusals say why, in words.
    refusal = await command(h, BOB, f'/cron add --deliver telegram:{ALICE} "every 1h" x')
    assert "only deliver back to this chat" in refusal
    assert "No job matches" in await command(h, BOB, f"/cron remove {alice_job.id}")
    # The operator sees every job, and Bob still runs his own.
    assert {alice_job.id, bob_job.id} <= {j.id for j in await jobs(h)}
    assert "Running" in await command(h, BOB, f"/cron run {bob_job.id}")
