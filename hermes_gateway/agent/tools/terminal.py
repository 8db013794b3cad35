"""The ``terminal`` tool: run one shell command without ever blocking the event loop.

How a command runs and why:

* ``/bin/sh -c COMMAND`` in its own session (``start_new_session=True``), so the command and
  everything it spawns share one process group that can be signalled as a whole.
* stdin is ``/dev/null`` (nothing may wait for a keyboard), stdout and stderr go to one pipe
  that we own. The pipe is read by an ``asyncio.Protocol`` that feeds a head+tail buffer
  directly, so a command printing gigabytes never makes us hold more than ``output_cap`` bytes.
* Timeout and interrupt both stop the group the same way: SIGTERM, then SIGKILL one second
  later if anything in the group is still alive (a process that ignores SIGTERM cannot hold
  the agent hostage).
* When the shell exits but a background child still holds the pipe (``server &``), we stop
  reading after a short grace period and say so instead of waiting forever; the background
  process is left alone.

Dangerous commands: :func:`~hermes_gateway.agent.tools.danger.dangerous_reason` parses the
command (through ``sh -c``, ``eval``, pipes, interpreters' ``-c`` code; its docstring holds the
rules, e.g. every recursive ``rm`` asks). When it gives a reason and ``ctx.approve`` is set,
the operator is asked first; a "no" means the command never runs. It is a guard, not a
sandbox.
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hermes_gateway.agent.tools.base import (
    ApprovalRequest,
    Tool,
    ToolContext,
    ToolResult,
    error_result,
    plural,
    refusal,
    resolve_path,
    working_dir,
)
from hermes_gateway.agent.tools.boundary import shell_environment
from hermes_gateway.agent.tools.danger import dangerous_reason
from hermes_gateway.text import one_line


@dataclass
class _HeadTailBuffer:
    """Bounded capture of a byte stream: the first half of the cap and the latest half.

    Only counters grow with the stream, so memory stays at ``cap`` bytes whatever it prints.
    """

    cap: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0
    newlines: int = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.newlines += data.count(b"\n")
        head_cap = self.cap // 2
        room = head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        tail_cap = self.cap - head_cap
        if len(data) >= tail_cap:
            self.tail[:] = data[len(data) - tail_cap :]
        else:
            self.tail += data
            excess = len(self.tail) - tail_cap
            if excess > 0:
                del self.tail[:excess]

    @property
    def omitted(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    @property
    def lines(self) -> int:
        """Line count of everything seen (a final unterminated line counts too)."""
        if self.total == 0:
            return 0
        last = (self.tail or self.head)[-1:]
        return self.newlines + (0 if last == b"\n" else 1)

    def render(self) -> str:
        if self.omitted == 0:
            return bytes(self.head + self.tail).decode("utf-8", "replace")
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        return f"{head}\n[... {self.omitted} bytes omitted ...]\n{tail}"


class _PipeSink(asyncio.Protocol):
    """Feeds pipe data straight into the buffer; resolves ``closed`` at EOF."""

    def __init__(self, buffer: _HeadTailBuffer, closed: asyncio.Future[None]) -> None:
        self._buffer = buffer
        self._closed = closed

    def data_received(self, data: bytes) -> None:
        self._buffer.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TerminalTool(Tool):
    """Run a shell command and return its merged output and exit code."""

    name: ClassVar[str] = "terminal"
    mutates: ClassVar[bool] = True
    description: ClassVar[str] = (
        "Run a shell command with /bin/sh on the host and return its combined stdout and "
        "stderr followed by the exit code. Runs non-interactively (stdin is empty): pass "
        "flags such as -y instead of waiting for prompts. Long output keeps its beginning "
        "and end. Use workdir to run in another directory and timeout (seconds) for slow "
        "commands. Dangerous commands (recursive deletes, disk formatting, reboots...) may "
        "need the operator's approval."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The shell command to run."},
            "timeout": {
                "type": "number",
                "description": "Seconds before the command is killed (default 180).",
            },
            "workdir": {
                "type": "string",
                "description": "Directory to run in (default: the session's working directory).",
            },
        },
        "required": ["command"],
    }

    kill_grace: float = 1.0
    """Seconds between SIGTERM and SIGKILL when stopping the process group."""
    drain_grace: float = 1.0
    """Seconds to keep reading after the shell exited, for output still in the pipe."""
    max_timeout: float = 3600.0

    def __init__(self, *, timeout: float = 180.0, output_cap: int = 50_000) -> None:
        """Args:
        timeout: Default per-command timeout in seconds.
        output_cap: Bytes of output kept (half from the start, half from the end).
        """
        self.timeout = timeout
        self.output_cap = output_cap

    def preview(self, args: dict[str, Any]) -> str:
        return one_line(str(args.get("command", "")))

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        command = str(args.get("command", ""))
        if not command.strip():
            return error_result("command is empty")
        timeout = float(args.get("timeout") or self.timeout)
        if timeout <= 0:
            return error_result(f"timeout must be positive, got {timeout:g}")
        timeout = min(timeout, self.max_timeout)

        workdir = args.get("workdir")
        cwd = resolve_path(ctx, str(workdir)) if workdir else working_dir(ctx)
        env: dict[str, str] | None = None
        if ctx.boundary is not None and ctx.boundary.confined:
            # A remote chat: its workspace, and no secrets in the environment. The shell can
            # still read what the OS user can; that is what approvals are for.
            refused = await refusal(ctx, cwd, write=False)
            if refused is not None:
                return refused
            env = shell_environment()

        reason = dangerous_reason(command)
        if reason is not None and ctx.approve is not None:
            request = ApprovalRequest(tool=self.name, command=command, reason=reason)
            if not await ctx.approve(request):
                return ToolResult(
                    content=request.refusal
                    or f"denied by the operator: {reason}. The command was not run: {command}",
                    ok=False,
                    summary=one_line(request.refusal.split(":", 1)[0], 60)
                    if request.refusal
                    else "denied by the operator",
                )
        if ctx.interrupt.is_set():
            return ToolResult(
                content="interrupted before the command started", ok=False, summary="interrupted"
            )
        return await self._execute(command, cwd, timeout, ctx.interrupt, env)

    async def _execute(
        self,
        command: str,
        cwd: Path,
        seconds: float,
        interrupt: asyncio.Event,
        env: dict[str, str] | None = None,
    ) -> ToolResult:
        loop = asyncio.get_running_loop()
        buffer = _HeadTailBuffer(self.output_cap)
        closed: asyncio.Future[None] = loop.create_future()
        read_fd, write_fd = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=str(cwd),
                env=env,
                start_new_session=True,
            )
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            # The child's chdir failed (missing workdir); checking first would mean a
            # blocking stat on the event loop for every command.
            os.close(read_fd)
            return error_result(f"cannot run in {cwd}: {exc.strerror}", summary="bad workdir")
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        pgid = proc.pid  # session leader: its pid is the group id
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        transport: asyncio.BaseTransport | None = None
        wait_proc = asyncio.ensure_future(proc.wait())
        wait_intr = asyncio.ensure_future(interrupt.wait())
        try:
            transport, _ = await loop.connect_read_pipe(lambda: _PipeSink(buffer, closed), pipe)
            done, _ = await asyncio.wait(
                {wait_proc, wait_intr}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if wait_proc in done:
                outcome = "exit"
            else:
                outcome = "interrupted" if wait_intr in done else "timeout"
                await self._stop_group(pgid, wait_proc, closed)
            drained, _ = await asyncio.wait({closed}, timeout=self.drain_grace)
            detached = closed not in drained
        finally:
            wait_intr.cancel()
            if proc.returncode is None:
                # Cancelled (or failed) mid-run: nothing we started may outlive us.
                _signal_group(pgid, signal.SIGKILL)
                wait_proc.cancel()
            if transport is not None:
                transport.close()
            else:
                pipe.close()
        return self._result(buffer, proc.returncode, outcome, seconds, detached)

    async def _stop_group(
        self, pgid: int, wait_proc: asyncio.Future[int], closed: asyncio.Future[None]
    ) -> None:
        """SIGTERM the whole group, SIGKILL it after ``kill_grace`` if anything survived."""
        _signal_group(pgid, signal.SIGTERM)
        either: set[asyncio.Future[Any]] = {wait_proc, closed}
        await asyncio.wait(either, timeout=self.kill_grace)
        if not wait_proc.done() or not closed.done() or _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(wait_proc), timeout=5.0)

    def _result(
        self,
        buffer: _HeadTailBuffer,
        code: int | None,
        outcome: str,
        timeout: float,
        detached: bool,
    ) -> ToolResult:
        output = buffer.render() if buffer.total else "(no output)"
        lines = plural(buffer.lines, "line")
        notes: list[str] = []
        if detached:
            notes.append(
                "[a background process still holds the output open; stopped reading. "
                "Redirect its output to a file to keep it running quietly.]"
            )
        if outcome == "timeout":
            notes.append(f"timed out after {timeout:g}s (process group killed)")
            summary, ok = f"timed out after {timeout:g}s, {lines}", False
        elif outcome == "interrupted":
            notes.append("interrupted: the command was stopped by the user")
            summary, ok = f"interrupted, {lines}", False
        else:
            ok = code == 0
            summary = f"exit {code}, {lines}"
        notes.append(f"exit code: {code}")
        content = output.rstrip("\n") + "\n\n" + "\n".join(notes)
        return ToolResult(content=content, ok=ok, summary=summary)
