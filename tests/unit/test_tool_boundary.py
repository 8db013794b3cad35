"""The tools' boundary: a remote chat's tools stay in its workspace, HERMES_HOME's
credentials and database are off limits, the operator keeps today's reach."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from hermes_gateway.access.approvals import ApprovalGatedTools
from hermes_gateway.agent.tools.base import ApprovalRequest, ToolContext
from hermes_gateway.agent.tools.boundary import boundary_for, shell_environment, workspace_for
from hermes_gateway.agent.tools.files import ReadFileTool, SearchFilesTool, WriteFileTool
from hermes_gateway.agent.tools.registry import default_registry
from hermes_gateway.agent.tools.terminal import TerminalTool
from hermes_gateway.paths import DB_FILENAME

SECRET = "123456:bot-token-secret"
KEY = "telegram:dm:42"


@pytest.fixture
def home(hermes_home: Path) -> Path:
    (hermes_home / ".env").write_text(f"TELEGRAM_BOT_TOKEN={SECRET}\n")
    (hermes_home / "config.yaml").write_text(f"token: {SECRET}\n")
    for suffix in ("", "-wal", "-shm"):
        (hermes_home / f"{DB_FILENAME}{suffix}").write_text(f"db {SECRET}\n")
    other = workspace_for(hermes_home, "telegram", "telegram:dm:99")
    other.mkdir(parents=True)
    (other / "diary.txt").write_text(f"other chat {SECRET}\n")
    return hermes_home


def remote(home: Path, key: str = KEY) -> ToolContext:
    boundary = boundary_for(home, "telegram", key)
    assert boundary.workspace is not None
    return ToolContext(
        session_id="s",
        session_key=key,
        cwd=boundary.workspace,
        interrupt=asyncio.Event(),
        boundary=boundary,
    )


def operator(home: Path, cwd: Path) -> ToolContext:
    return ToolContext(
        session_id="s",
        session_key="local:dm:operator",
        cwd=cwd,
        interrupt=asyncio.Event(),
        boundary=boundary_for(home, "local", "local:dm:operator"),
    )


def hostile_paths(home: Path) -> list[str]:
    other = workspace_for(home, "telegram", "telegram:dm:99")
    return [
        str(home / ".env"),
        str(home / "config.yaml"),
        str(home / DB_FILENAME),
        str(home / f"{DB_FILENAME}-wal"),
        str(home / f"{DB_FILENAME}-shm"),
        str(other / "diary.txt"),
        "../../../.env",
        f"../{other.name}/diary.txt",
        "/etc/passwd",
        "link-out/.env",
        "env-link",
    ]


async def make_links(home: Path) -> None:
    ws = remote(home).boundary.workspace  # type: ignore[union-attr]
    ws.mkdir(parents=True, exist_ok=True)
    os.symlink(home, ws / "link-out")
    os.symlink(home / ".env", ws / "env-link")


async def test_remote_file_tools_refuse_everything_outside_the_workspace(home: Path) -> None:
    await make_links(home)
    ctx = remote(home)
    for path in hostile_paths(home):
        result = await ReadFileTool().run({"path": path}, ctx)
        assert not result.ok and result.content.startswith("error: refused"), path
        assert SECRET not in result.content
        written = await WriteFileTool().run({"path": path, "content": "pwned"}, ctx)
        assert not written.ok and written.content.startswith("error: refused"), path
    assert (home / ".env").read_text() == f"TELEGRAM_BOT_TOKEN={SECRET}\n"


async def test_remote_search_refuses_home_and_skips_links_out(home: Path) -> None:
    await make_links(home)
    ctx = remote(home)
    assert ctx.boundary is not None and ctx.boundary.workspace is not None
    (ctx.boundary.workspace / "mine.txt").write_text("bot-token-secret is a phrase\n")
    outside = await SearchFilesTool().run({"pattern": "secret", "path": str(home)}, ctx)
    assert not outside.ok and "refused" in outside.content
    inside = await SearchFilesTool().run({"pattern": "secret"}, ctx)
    assert inside.ok and inside.content == "mine.txt:1: bot-token-secret is a phrase"


async def test_remote_workspace_is_created_and_usable(home: Path) -> None:
    ctx = remote(home)
    wrote = await WriteFileTool().run({"path": "notes/a.txt", "content": "hi"}, ctx)
    assert wrote.ok
    assert ctx.boundary is not None and ctx.boundary.workspace is not None
    assert (ctx.boundary.workspace / "notes" / "a.txt").read_text() == "hi"
    assert (await ReadFileTool().run({"path": "notes/a.txt"}, ctx)).ok
    assert ctx.boundary.workspace.parent == home / "workspaces" / "telegram"
    assert str(42) not in ctx.boundary.workspace.name  # a hash, not the chat id


async def test_remote_shell_runs_in_the_workspace_without_secrets(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:pw@127.0.0.1:1/v1")
    monkeypatch.setenv("API_SERVER_KEY", SECRET)
    monkeypatch.setenv("MY_SERVICE_SECRET", SECRET)
    ctx = remote(home)
    result = await TerminalTool().run({"command": "pwd; env"}, ctx)
    assert result.ok
    assert ctx.boundary is not None and ctx.boundary.workspace is not None
    assert result.content.splitlines()[0] == str(ctx.boundary.workspace.resolve())
    for name in ("TELEGRAM_BOT_TOKEN", "OPENAI_BASE_URL", "API_SERVER_KEY", "HERMES_HOME"):
        assert f"{name}=" not in result.content
    assert SECRET not in result.content
    assert "PATH=" in result.content
    out = await TerminalTool().run({"command": "pwd", "workdir": str(home)}, ctx)
    assert not out.ok and "refused" in out.content


def test_shell_environment_keeps_the_ordinary_variables() -> None:
    env = shell_environment(
        {"PATH": "/bin", "HOME": "/h", "LANG": "C", "GITHUB_TOKEN": "x", "AWS_SECRET": "y",
         "DB_PASSWORD": "z", "OPENAI_MODEL": "m", "HERMES_HOME": "/hh", "API_SERVER_PORT": "1"}
    )  # fmt: skip
    assert env == {"PATH": "/bin", "HOME": "/h", "LANG": "C"}


async def test_operator_reads_everything_but_never_writes_the_database(home: Path) -> None:
    ctx = operator(home, home)
    assert SECRET in (await ReadFileTool().run({"path": ".env"}, ctx)).content
    other = workspace_for(home, "telegram", "telegram:dm:99") / "diary.txt"
    assert (await ReadFileTool().run({"path": str(other)}, ctx)).ok
    for name in (DB_FILENAME, f"{DB_FILENAME}-wal"):
        result = await WriteFileTool().run({"path": name, "content": "x"}, ctx)
        assert not result.ok and "database" in result.content
    assert (home / DB_FILENAME).read_text() == f"db {SECRET}\n"
    assert (await WriteFileTool().run({"path": "scratch.txt", "content": "x"}, ctx)).ok


class _Approver:
    """Stands in for the approvals feature's SessionApprover: records and answers."""

    def __init__(self, mode: str, answer: bool) -> None:
        self.mode, self.answer = mode, answer
        self.asked: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> bool:
        self.asked.append(request)
        if not self.answer:
            request.refusal = "denied by the operator"
        return self.answer


async def test_writes_mode_asks_for_shell_and_writes_not_reads(home: Path) -> None:
    tools = ApprovalGatedTools(default_registry())
    approver = _Approver("writes", answer=False)
    ctx = remote(home)
    ctx.approve = approver
    ran = await tools.call("terminal", {"command": "echo hi > made.txt"}, ctx)
    wrote = await tools.call("write_file", {"path": "w.txt", "content": "x"}, ctx)
    read = await tools.call("read_file", {"path": "nothing.txt"}, ctx)
    searched = await tools.call("search_files", {"pattern": "x"}, ctx)
    assert [r.tool for r in approver.asked] == ["terminal", "write_file"]
    assert "asks before shell commands and file writes" in approver.asked[0].reason
    assert not ran.ok and not wrote.ok
    assert "not approved" == ran.summary == wrote.summary
    assert "refused" not in read.content and searched.ok
    assert ctx.boundary is not None and ctx.boundary.workspace is not None
    assert not (ctx.boundary.workspace / "made.txt").exists()
    assert not (ctx.boundary.workspace / "w.txt").exists()
