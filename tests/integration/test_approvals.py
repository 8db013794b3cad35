"""Tool approvals in a real gateway (local terminal only), answered in code.

Why: an approval is a promise that a dangerous command runs only after a yes. These tests pin
the answers (once, for the session, deny, timeout, interrupt), what is stored with the session
and published, who may answer with /approve and /deny, and that ``approvals: always`` asks
before every tool call, and only once for a dangerous one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from hermes_gateway.access.approvals import ApprovalGatedTools, ApprovalManager
from hermes_gateway.access.events import ApprovalRequested, ApprovalResolved
from hermes_gateway.access.policy import hash_id
from hermes_gateway.agent.tools.base import ApprovalRequest
from hermes_gateway.gateway import Gateway
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.runner import GatewayRunner
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.helpers import Recorder


class Harness:
    def __init__(self, gw: Gateway, rec: Recorder, fake: FakeOpenAI) -> None:
        self.gw, self.rec, self.fake = gw, rec, fake

    @property
    def runner(self) -> GatewayRunner:
        assert self.gw.runner is not None
        return self.gw.runner

    @property
    def approvals(self) -> ApprovalManager:
        assert self.gw.approvals is not None
        return self.gw.approvals

    async def requested(self, count: int = 1) -> ApprovalRequested:
        await self.rec.wait_for(lambda: len(self.rec.of(ApprovalRequested)) >= count)
        return self.rec.of(ApprovalRequested)[count - 1]

    def tool_results(self) -> list[str]:
        """What the model was told by tools, over all requests it received."""
        out: list[str] = []
        for body in self.fake.requests:
            out = [m["content"] for m in body["messages"] if m["role"] == "tool"]
        return out


@pytest.fixture
async def h(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[Harness]:
    config = make_config(hermes_home, fake_openai)
    gw = build_gateway(config)
    rec = Recorder(gw.bus)
    await gw.start(local=True)
    gw.approvals.operator_present = True  # the tests answer as the operator's screen would
    try:
        yield Harness(gw, rec, fake_openai)
    finally:
        await gw.stop()
        rec.close()


def rm_call(target: Path) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": f"rm -rf {target}"})])


async def test_a_dangerous_command_waits_and_runs_once_approved(
    h: Harness, hermes_home: Path
) -> None:
    victim = hermes_home / "victim"
    victim.mkdir()
    h.fake.enqueue(rm_call(victim), ScriptedReply(text="done"))
    await h.gw.local.submit("clean up")
    asked = await h.requested()
    assert asked.tool == "terminal" and asked.command == f"rm -rf {victim}"
    assert asked.reason == "recursive delete (rm -r)" and asked.platform == "local"
    assert asked.where.endswith("this terminal") and asked.timeout == 300
    await asyncio.sleep(0.1)
    assert victim.exists()  # still waiting
    assert h.approvals.resolve(asked.request_id, "once", by="operator")
    await h.runner.wait_idle()
    assert not victim.exists()
    resolved = h.rec.of(ApprovalResolved)
    assert [(r.request_id, r.decision, r.by) for r in resolved] == [
        (asked.request_id, "once", "operator")
    ]
    rt = h.runner.sessions[asked.session_key]
    (row,) = await h.approvals.history(rt.record.id)
    assert row["id"] == asked.request_id and row["decision"] == "once"
    assert row["command"] == f"rm -rf {victim}" and row["decided_by"] == "operator"
    assert not h.approvals.resolve(asked.request_id, "deny")  # answered already


async def test_a_denied_command_never_runs_and_the_model_is_told(
    h: Harness, hermes_home: Path
) -> None:
    victim = hermes_home / "victim"
    victim.mkdir()
    h.fake.enqueue(rm_call(victim), ScriptedReply(text="ok"))
    await h.gw.local.submit("clean up")
    asked = await h.requested()
    h.approvals.resolve(asked.request_id, "deny")
    await h.runner.wait_idle()
    assert victim.exists()
    (told,) = h.tool_results()
    assert told.startswith("denied by the operator: recursive delete") and "Not run" in told


async def test_no_answer_in_time_is_a_denial(h: Harness, hermes_home: Path) -> None:
    h.approvals.timeout = 0.2
    victim = hermes_home / "victim"
    victim.mkdir()
    h.fake.enqueue(rm_call(victim), ScriptedReply(text="ok"))
    await h.gw.local.submit("clean up")
    asked = await h.requested()
    assert asked.timeout == 0.2
    await h.runner.wait_idle()
    assert victim.exists()
    (told,) = h.tool_results()
    assert told.startswith("no answer from the operator within 0.2 s (treated as a denial)")
    (resolved,) = h.rec.of(ApprovalResolved)
    assert (resolved.decision, resolved.by) == ("timeout", "timeout")
    rt = h.runner.sessions[asked.session_key]
    assert [r["decision"] for r in await h.approvals.history(rt.record.id)] == ["timeout"]


async def test_approve_for_the_session_covers_later_calls_of_that_session_only(
    h: Harness, hermes_home: Path
) -> None:
    dirs = [hermes_home / f"d{i}" for i in range(3)]
    for d in dirs:
        d.mkdir()
    h.fake.enqueue(rm_call(dirs[0]), rm_call(dirs[1]), ScriptedReply(text="both gone"))
    await h.gw.local.submit("clean up")
    asked = await h.requested()
    h.approvals.resolve(asked.request_id, "session")
    await h.runner.wait_idle()
    assert not dirs[0].exists() and not dirs[1].exists()
    auto = [r for r in h.rec.of(ApprovalResolved) if r.auto]
    assert len(auto) == 1 and auto[0].command == f"rm -rf {dirs[1]}"
    assert len(h.rec.of(ApprovalRequested)) == 1
    # /new starts another stored session: it asks again.
    await h.gw.local.submit("/new")
    h.fake.enqueue(rm_call(dirs[2]), ScriptedReply(text="ok"))
    await h.gw.local.submit("and this one")
    second = await h.requested(2)
    h.approvals.resolve(second.request_id, "deny")
    await h.runner.wait_idle()
    assert dirs[2].exists()


async def test_interrupting_the_turn_cancels_the_request(h: Harness, hermes_home: Path) -> None:
    victim = hermes_home / "victim"
    victim.mkdir()
    h.fake.enqueue(rm_call(victim))
    await h.gw.local.submit("clean up")
    asked = await h.requested()
    assert h.runner.interrupt(asked.session_key)
    await h.runner.wait_idle()
    (resolved,) = h.rec.of(ApprovalResolved)
    assert (resolved.decision, resolved.by) == ("cancelled", "interrupt")
    assert h.approvals.waiting() == [] and victim.exists()


async def test_approve_and_deny_commands(h: Harness, hermes_home: Path) -> None:
    victim = hermes_home / "victim"
    victim.mkdir()
    h.fake.enqueue(rm_call(victim), ScriptedReply(text="ok"))
    await h.gw.local.submit("/approve")
    nothing = h.rec.of(ev.CommandReplied)[-1]
    assert not nothing.ok and "Nothing is waiting" in nothing.text
    await h.gw.local.submit("clean up")
    asked = await h.requested()
    await h.gw.local.submit(f"/approve {asked.request_id}")
    await h.runner.wait_idle()
    reply = h.rec.of(ev.CommandReplied)[-1]
    assert reply.ok and reply.text.startswith("Approved once: `rm -rf /")
    assert not victim.exists()


async def test_remote_chats_answer_only_their_own_requests_and_only_when_allowed(
    h: Harness,
) -> None:
    runner, approvals = h.runner, h.approvals
    alice = SessionSource("telegram", "1", "dm", user_id="1", user_name="Alice")
    bob = SessionSource("telegram", "2", "dm", user_id="2", user_name="Bob")
    request = ApprovalRequest("terminal", "reboot", "shutdown or reboot of the machine")
    rt = await runner.runtime(alice)
    task = asyncio.create_task(approvals.approver_for(rt)(request))
    asked = await h.requested()
    assert asked.where == "Alice · telegram DM" and not asked.remote

    async def command(source: SessionSource, text: str) -> ev.CommandReplied:
        await runner.handle(MessageEvent(text=text, source=source))
        return h.rec.of(ev.CommandReplied)[-1]

    # The commands run only for authorised senders: allow these two for this test.
    h.gw.config.allowed_users = ["1", "2"]
    refused = await command(alice, "/approve")
    assert not refused.ok and "operator" in refused.text
    h.gw.config.platforms.telegram.remote_approvals = True
    assert "Nothing is waiting" in (await command(bob, "/approve")).text
    denied = await command(alice, "/deny")
    assert denied.ok and denied.text == "Denied: `reboot`"
    assert await task is False
    assert request.refusal.startswith("denied by the operator")
    (resolved,) = h.rec.of(ApprovalResolved)
    assert resolved.by == f"telegram:{hash_id('1')}"


async def test_several_waiting_requests_need_an_id(h: Harness) -> None:
    src = h.gw.local.source
    rt = await h.runner.runtime(src)
    approve = h.approvals.approver_for(rt)
    first = asyncio.create_task(approve(ApprovalRequest("terminal", "reboot", "r")))
    second = asyncio.create_task(approve(ApprovalRequest("terminal", "halt", "h")))
    a, b = await h.requested(1), await h.requested(2)
    await h.gw.local.submit("/approve session")
    listing = h.rec.of(ev.CommandReplied)[-1]
    assert not listing.ok and a.request_id in listing.text and b.request_id in listing.text
    await h.gw.local.submit(f"/deny {b.request_id}")
    await h.gw.local.submit(f"/approve session {a.request_id}")
    assert await first is True and await second is False
    # "session" sticks: the next request of this session goes ahead without asking.
    assert await approve(ApprovalRequest("terminal", "reboot", "r")) is True
    assert len(h.rec.of(ApprovalRequested)) == 2


async def test_approvals_always_asks_before_every_tool_call(h: Harness, hermes_home: Path) -> None:
    assert isinstance(h.runner.agent.tools, ApprovalGatedTools)
    h.gw.config.platforms.telegram.approvals = "always"
    (hermes_home / "note.txt").write_text("hello")
    victim = hermes_home / "victim"
    victim.mkdir()
    rt = await h.runner.runtime(SessionSource("telegram", "5", "dm", user_id="5"))
    h.fake.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("read_file", {"path": "note.txt"})]),
        rm_call(victim),
        ScriptedReply(text="ok"),
    )
    rt.history = [{"role": "user", "content": "go"}]
    task = asyncio.create_task(h.runner.run_agent(rt, rt.history))
    first = await h.requested(1)
    assert first.tool == "read_file" and first.reason == "this platform asks before every tool call"
    assert json.loads(first.command.removeprefix("read_file ")) == {"path": "note.txt"}
    h.approvals.resolve(first.request_id, "deny")
    second = await h.requested(2)
    assert (second.tool, second.command) == ("terminal", f"rm -rf {victim}")
    assert second.reason == "recursive delete (rm -r)"
    h.approvals.resolve(second.request_id, "once")
    await task
    assert len(h.rec.of(ApprovalRequested)) == 2  # the dangerous command asked once
    assert not victim.exists()
    told = h.tool_results()
    assert told[0].startswith("error: denied by the operator") and "hello" not in told[0]


async def test_headless_without_remote_approval_denies_at_once(h: Harness, tmp_path: Path):
    """Nobody could answer: no 5-minute wait, a clear reason for the model, nothing run."""
    h.approvals.operator_present = False
    victim = tmp_path / "keep-me"
    victim.mkdir()
    h.fake.enqueue(rm_call(victim), ScriptedReply(text="understood"))
    started = asyncio.get_running_loop().time()
    await h.gw.local.submit("clean up")
    await h.runner.wait_idle(timeout=10)
    assert asyncio.get_running_loop().time() - started < 3
    assert victim.exists()
    tool_result = h.fake.requests[-1]["messages"][-1]["content"]
    assert "no operator screen is attached" in tool_result
    resolved = [e for e in h.rec.of(ApprovalResolved) if e.by == "nobody"]
    assert resolved and resolved[0].decision == "deny"
