"""Cron inside the real gateway: /cron from the terminal and a remote chat, scheduled runs as
isolated agent sessions against the scripted model, output files, delivery (and a failed
delivery recorded apart from the run), [SILENT], the cronjob tool, two gateways on one home,
and the ``hermes cron`` CLI working while a gateway runs.

Time is a ManualClock handed to the Gateway; everything else is real.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hermes_cron import cli
from hermes_cron.clock import ManualClock
from hermes_cron.events import CronJobChanged, CronRunFinished, CronRunStarted
from hermes_cron.jobs import Job
from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.helpers import Recorder

T0 = datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC)
ANN = SessionSource(
    platform="testchat", chat_id="c1", chat_type="dm", user_id="ann", user_name="ann"
)


class ChatPlatform(PlatformAdapter):
    """A remote platform that records sends, or fails them when ``broken``."""

    name = "testchat"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []
        self.broken = False

    async def start(self) -> None:
        self.report("connected")

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        if self.broken:
            raise ConnectionError("chat unreachable")
        self.sent.append((source.chat_id, text))

    def cron_messages(self) -> list[tuple[str, str]]:
        return [(c, t) for c, t in self.sent if t.startswith("⏰")]


class Harness:
    def __init__(self, gw: Gateway, clock: ManualClock, chat: ChatPlatform) -> None:
        self.gw, self.clock, self.chat = gw, clock, chat
        self.rec = Recorder(gw.bus)

    @property
    def cron(self):
        assert self.gw.cron is not None
        return self.gw.cron

    async def local(self, text: str) -> ev.CommandReplied:
        before = len(self.rec.of(ev.CommandReplied))
        await self.gw.local.submit(text)
        await self.rec.wait_for(lambda: len(self.rec.of(ev.CommandReplied)) > before)
        return self.rec.of(ev.CommandReplied)[-1]

    async def remote(self, text: str) -> None:
        await self.chat.dispatch(MessageEvent(text=text, source=ANN))

    async def finished(self, n: int = 1, timeout: float = 5.0) -> CronRunFinished:
        await self.rec.wait_for(lambda: len(self.rec.of(CronRunFinished)) >= n, timeout)
        return self.rec.of(CronRunFinished)[n - 1]

    async def only_job(self) -> Job:
        (job,) = await self.cron.list_jobs()
        return job


def cron_config(home: Path, fake: FakeOpenAI, **env: str) -> Config:
    config = make_config(home, fake, HERMES_TIMEZONE="UTC", **env)
    config.allowed_users = ["ann"]
    return config


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[Harness]:
    clock = ManualClock(T0)
    gw = build_gateway(cron_config(hermes_home, fake_openai), clock=clock)
    chat = ChatPlatform()
    harness = Harness(gw, clock, chat)
    await gw.start(local=True, adapters=[chat])
    yield harness
    await gw.stop()


async def read(path: str | Path | None) -> str:
    return await asyncio.to_thread(Path(path or "").read_text, encoding="utf-8")


def job_id_of(reply: ev.CommandReplied) -> str:
    return reply.text.split("`")[1]


async def test_cron_command_from_the_terminal(h: Harness, fake_openai: FakeOpenAI):
    reply = await h.local('/cron add "every 1h" summarize the news')
    assert reply.ok, reply.text
    job_id = job_id_of(reply)
    assert "every hour" in reply.text and "in 1 h" in reply.text and "local" in reply.text
    listing = (await h.local("/cron list")).text
    assert f"`{job_id}`" in listing and "summarize the news" in listing
    assert "next in 1 h" in listing
    assert (await h.local(f"/cron pause {job_id}")).ok
    assert "paused" in (await h.local("/cron")).text
    resumed = await h.local(f"/cron resume {job_id[:4]}")
    assert resumed.ok and "next run in 1 h" in resumed.text
    changes = [e.change for e in h.rec.of(CronJobChanged)]
    assert changes == ["added", "paused", "resumed"]

    assert (await h.local(f"/cron run {job_id}")).ok
    done = await h.finished()
    assert (done.status, done.delivery_status) == ("ok", "local")
    started = h.rec.of(CronRunStarted)[0]
    assert started.session_key == f"cron:dm:{job_id}" and started.trigger == "manual"
    request = fake_openai.requests[-1]["messages"]
    assert request[0]["role"] == "system" and "scheduled job" in request[0]["content"]
    assert [m["content"] for m in request[1:]] == ["summarize the news"]
    output = Path(done.output_path or "")
    assert output.parent == h.gw.config.paths.cron_output_dir / job_id
    assert "echo: summarize the news" in await read(output)
    job = await h.only_job()
    assert (job.last_status, job.last_output, job.runs) == ("ok", str(output), 1)
    assert job.next_run == T0 + timedelta(hours=1)  # a manual run leaves the schedule alone

    assert (await h.local(f"/cron remove {job_id}")).ok
    assert await h.cron.list_jobs() == []
    bad = await h.local("/cron frobnicate")
    assert not bad.ok and "Usage" in bad.text
    missing = await h.local("/cron run nothing")
    assert not missing.ok and "No job" in missing.text


async def test_scheduled_one_shot_from_a_chat_runs_delivers_to_it_and_is_removed(h: Harness):
    await h.remote('/cron add --name Tea "in 5m" remind me about the tea')
    job = await h.only_job()
    assert (job.name, job.deliver, job.origin) == ("Tea", "origin", ANN)
    assert h.chat.sent[-1][1].startswith("Scheduled “Tea”")
    ticks = h.cron.ticker.ticks
    h.clock.set(T0.replace(minute=5, second=0))  # the job is due at 08:05:30
    await _until(lambda: h.cron.ticker.ticks > ticks)
    assert h.rec.of(CronRunStarted) == []
    h.clock.set(T0.replace(minute=6, second=0))  # the next minute boundary runs it
    done = await h.finished()
    assert (done.status, done.delivery_status, done.job_removed) == ("ok", "ok", True)
    assert h.chat.cron_messages() == [("c1", "⏰ Tea\n\necho: remind me about the tea")]
    assert await h.cron.list_jobs() == []
    # The run was its own session, apart from Ann's chat with the agent.
    sessions = await h.gw.store.list_sessions(limit=10)
    cron_sessions = [s for s in sessions if s.platform == "cron"]
    assert len(cron_sessions) == 1 and cron_sessions[0].session_key == f"cron:dm:{job.id}"


async def test_failed_delivery_is_recorded_apart_from_the_run(h: Harness):
    await h.local('/cron add --deliver testchat:c1 "every 1h" status report')
    job = await h.only_job()
    assert job.deliver == "testchat:c1"
    h.chat.broken = True
    h.clock.advance(timedelta(hours=1))
    done = await h.finished()
    assert done.status == "ok" and done.error is None
    assert done.delivery_status == "failed" and "chat unreachable" in (done.delivery_error or "")
    job = await h.only_job()
    assert (job.last_status, job.last_delivery_status) == ("ok", "failed")
    assert "chat unreachable" in (job.last_delivery_error or "")
    (run,) = await h.cron.runs(job.id)
    assert (run.status, run.delivery_status) == ("ok", "failed")
    assert "echo: status report" in await read(run.output_path)  # kept, though not delivered
    listing = (await h.local("/cron list")).text
    assert "last ok" in listing and "delivery failed" in listing
    # The next run delivers again once the chat is back.
    h.chat.broken = False
    h.clock.advance(timedelta(hours=1))
    again = await h.finished(2)
    assert again.delivery_status == "ok" and len(h.chat.cron_messages()) == 1


async def test_silent_answer_is_saved_but_not_delivered(h: Harness, fake_openai: FakeOpenAI):
    await h.remote('/cron add "every 1h" anything new?')
    job = await h.only_job()
    fake_openai.enqueue(ScriptedReply(text="[SILENT]"))
    await h.cron.run_now(job.id)
    done = await h.finished()
    assert (done.status, done.delivery_status) == ("ok", "silent")
    assert h.chat.cron_messages() == []
    assert "[SILENT]" in await read(done.output_path)


async def test_model_failure_is_a_failed_run_and_is_delivered_as_such(
    h: Harness, fake_openai: FakeOpenAI
):
    await h.remote('/cron add "every 1h" anything new?')
    fake_openai.enqueue(ScriptedReply(status=400, error_message="bad model"))
    await h.cron.run_now((await h.only_job()).id)
    done = await h.finished()
    assert done.status == "error" and done.error
    assert done.delivery_status == "ok"
    ((_, text),) = h.chat.cron_messages()
    assert "The run failed" in text
    assert (await h.only_job()).last_status == "error"


async def test_the_agent_schedules_with_the_cronjob_tool_but_a_cron_run_cannot(
    h: Harness, fake_openai: FakeOpenAI
):
    args = {
        "action": "create",
        "schedule": "0 9 * * 1-5",
        "prompt": "send me a summary of the news",
        "name": "Weekday news",
    }
    fake_openai.enqueue(
        ScriptedReply(text="", tool_calls=[ToolCallSpec("cronjob", args)]),
        ScriptedReply(text="Done: every weekday at 09:00."),
    )
    await h.remote("every weekday at 9 send me a summary of the news")
    await h.gw.runner.wait_idle()
    job = await h.only_job()
    assert (job.name, job.schedule, job.deliver, job.origin) == (
        "Weekday news",
        "0 9 * * 1-5",
        "origin",
        ANN,
    )
    tools = fake_openai.requests[0]["tools"]
    schedule_help = next(t for t in tools if t["function"]["name"] == "cronjob")["function"]
    assert "Times are in UTC" in str(schedule_help["parameters"])

    sneaky = {"action": "create", "schedule": "every 1m", "prompt": "spawn more"}
    fake_openai.enqueue(
        ScriptedReply(text="", tool_calls=[ToolCallSpec("cronjob", sneaky)]),
        ScriptedReply(text="I could not."),
    )
    await h.cron.run_now(job.id)
    await h.finished()
    refusal = [e for e in h.rec.of(ev.ToolFinished) if e.session_key == job.session_key]
    assert len(refusal) == 1 and not refusal[0].ok
    assert [j.id for j in await h.cron.list_jobs()] == [job.id]


async def test_two_gateways_on_one_home_run_a_job_once(hermes_home, fake_openai):
    clock = ManualClock(T0)
    config = cron_config(hermes_home, fake_openai)
    gateways = [build_gateway(config, clock=clock), build_gateway(config, clock=clock)]
    recorders = [Recorder(g.bus) for g in gateways]
    for g in gateways:
        await g.start(local=False, adapters=[])
    try:
        assert gateways[0].cron is not None and gateways[1].cron is not None
        await gateways[0].cron.add("every 1h", "only once please")
        ticks = [g.cron.ticker.ticks for g in gateways]
        clock.advance(timedelta(hours=1))
        await _until(
            lambda: all(g.cron.ticker.ticks > t for g, t in zip(gateways, ticks, strict=True))
        )
        await _until(lambda: any(r.of(CronRunFinished) for r in recorders))
        for g in gateways:
            await g.cron.ticker.wait_idle()
        finished = [e for r in recorders for e in r.of(CronRunFinished)]
        assert len(finished) == 1 and finished[0].status == "ok"
        prompts = [m["content"] for r in fake_openai.requests for m in r["messages"][1:]]
        assert prompts == ["only once please"]
        (job,) = await gateways[1].cron.list_jobs()
        assert len(await gateways[1].cron.runs(job.id)) == 1
    finally:
        for g in gateways:
            await g.stop()


async def test_cli_works_on_the_database_of_a_running_gateway(h: Harness, fake_openai: FakeOpenAI):
    parser = argparse.ArgumentParser(prog="hermes")
    cli.add_parser(parser.add_subparsers(dest="command"))
    config = h.gw.config

    async def hermes(*argv: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await cli.run_async(
            parser.parse_args(["cron", *argv]), config, out=out, err=err, now=h.clock.now()
        )
        return code, out.getvalue() + err.getvalue()

    code, text = await hermes("add", "--name", "ping", "every 1h", "say", "ping")
    assert code == 0 and "every hour" in text
    job = await h.only_job()
    assert (await hermes("add", "30m", "x"))[0] == 1
    assert (await hermes("add", "every 1h", "x", "--deliver", "origin"))[0] == 1
    assert (await hermes("pause", "nothing"))[0] == 1

    code, text = await hermes("run", "ping")
    assert code == 0 and "the running gateway starts it" in text
    h.clock.advance(timedelta(minutes=1))  # the gateway's next tick picks the request up
    done = await h.finished()
    assert done.status == "ok" and h.rec.of(CronRunStarted)[0].trigger == "manual"
    h.clock.advance(timedelta(hours=1))  # and the schedule itself still runs
    await h.finished(2)

    # The installed command line too, as another process, while the gateway holds the file.
    env = {**os.environ, "HERMES_HOME": str(config.paths.home)}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hermes_tui.cli", "cron", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and job.id in proc.stdout and "ping" in proc.stdout
    assert "last ok" in proc.stdout
    code, text = await hermes("remove", job.id)
    assert code == 0 and await h.cron.list_jobs() == []


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


async def test_stopping_the_gateway_interrupts_a_run_which_is_not_rerun(hermes_home, fake_openai):
    clock = ManualClock(T0)
    config = cron_config(hermes_home, fake_openai)
    gateway = build_gateway(config, clock=clock)
    rec = Recorder(gateway.bus)
    await gateway.start(local=False, adapters=[])
    assert gateway.cron is not None
    job = await gateway.cron.add("every 1h", "a long task")
    fake_openai.enqueue(ScriptedReply(text="working on it " * 20, stall_after=2))
    clock.advance(timedelta(hours=1))
    await rec.wait_for(lambda: bool(rec.of(ev.AgentDelta)))
    await gateway.stop()
    (done,) = rec.of(CronRunFinished)
    assert (done.status, done.delivery_status) == ("interrupted", "skipped")

    again = build_gateway(config, clock=clock)
    rec2 = Recorder(again.bus)
    await again.start(local=False, adapters=[])
    try:
        assert again.cron is not None
        await again.cron.ticker.wait_idle()
        assert rec2.of(CronRunStarted) == [] and len(fake_openai.requests) == 1
        (run,) = await again.cron.runs(job.id)
        assert run.status == "interrupted" and run.output_path  # what it had said is kept
    finally:
        await again.stop()


async def test_a_chat_jobs_run_works_within_that_chats_boundary(h, fake_openai, hermes_home):
    """A job made in a remote chat runs its tools as that chat would: its workspace, and
    HERMES_HOME's credentials refused (before, cron runs had the operator's reach)."""
    secret = "CRON-CANARY-91d2"
    (hermes_home / ".env").write_text(f"TELEGRAM_BOT_TOKEN={secret}\n")
    job = await h.cron.add("every 1h", "read my notes", origin=ANN)
    assert job.owner == ANN.session_key
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("read_file", {"path": str(hermes_home / ".env")})]),
        ScriptedReply(text="done"),
    )
    await h.cron.run_now(job.id)
    finished = await h.finished()
    assert finished.status == "ok"
    sent_to_model = str(fake_openai.requests[-1]["messages"])
    assert secret not in sent_to_model
    assert "workspaces" in sent_to_model or "refused" in sent_to_model.lower()
