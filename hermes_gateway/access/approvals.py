"""Tool approvals: a dangerous action waits for a person's yes or no.

The terminal tool asks through ``ToolContext.approve`` when the danger check flags a command.
A platform's ``approvals`` setting widens that (:class:`ApprovalGatedTools` wraps the agent's
registry for it): ``writes``, the default for chat platforms because remote users are not
trusted, asks before every shell command and file write (tools with ``mutates = True``) and
lets reads through; ``always`` asks before every tool call; ``dangerous`` (the terminal, the
API server by default) asks only about flagged commands. Asking means:

1. a request with an ``asyncio.Future`` is registered and stored with its session (table
   ``approval_requests``), and :class:`~hermes_gateway.events.ApprovalRequested` is
   published: the TUI opens a dialog, headless logs print it;
2. a remote chat is told that the agent waits (and, when the platform's
   ``remote_approvals`` is true, that it may answer with ``/approve`` or ``/deny``);
3. the agent's turn waits for :meth:`ApprovalManager.resolve` (the dialog, or the commands)
   at most ``gateway.approval_timeout`` seconds (default 5 minutes); no answer is a denial,
   and the tool tells the model so in words. Interrupting the turn cancels the request.

"Approve for this session" lets every later request of the same stored session through
without asking (a ``/new`` ends it), still recorded and published with ``auto=True``.

The local terminal gets no exception: the operator's own dangerous commands ask in the same
dialog. A recursive delete typed by a model on the operator's behalf deserves one look too,
and one code path is easier to trust than two.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hermes_gateway.access.events import ApprovalDecision, ApprovalRequested, ApprovalResolved
from hermes_gateway.access.policy import hash_id
from hermes_gateway.agent.tools.base import ApprovalRequest, ToolContext, ToolResult
from hermes_gateway.agent.tools.danger import dangerous_reason
from hermes_gateway.agent.tools.registry import ToolRegistry
from hermes_gateway.commands.registry import CommandContext, CommandResult, CommandSpec
from hermes_gateway.config import Config
from hermes_gateway.events import GatewayEvent
from hermes_gateway.models import LOCAL_PLATFORM, SessionSource
from hermes_gateway.text import clip, one_line, rough_duration

if TYPE_CHECKING:
    from hermes_gateway.features import FeatureContext
    from hermes_gateway.runner import GatewayRunner, SessionRuntime

__all__ = [
    "ApprovalGatedTools",
    "ApprovalManager",
    "PendingApproval",
    "SessionApprover",
    "ApprovalsFeature",
]

log = logging.getLogger(__name__)

APPROVED: frozenset[str] = frozenset({"once", "session"})
_SILENT_PLATFORMS = frozenset({LOCAL_PLATFORM, "api_server", "cron"})
"""Platforms whose chat is not told about a waiting request (the TUI shows it, or there is
no chat to tell: an HTTP client, a scheduled job)."""
COMMAND_SHOWN = 2_000
"""Characters of a tool call's arguments shown in the dialog and stored."""


def describe_source(source: SessionSource) -> str:
    """``Alice · telegram DM`` / ``Bob · discord #general``: who asked, for a person."""
    who = source.user_name or source.user_id or "someone"
    if source.platform == LOCAL_PLATFORM:
        return f"{who} · this terminal"
    if source.chat_type == "dm":
        return f"{who} · {source.platform} DM"
    chat = source.chat_name or source.chat_id
    return f"{who} · {source.platform} {source.chat_type} {chat}"


@dataclass
class PendingApproval:
    """One request waiting for its answer (``future`` gets ``(decision, by)``)."""

    id: str
    session_key: str
    session_id: str | None
    source: SessionSource
    request: ApprovalRequest
    created_at: float
    timeout: float
    remote: bool
    future: asyncio.Future[tuple[str, str]] = field(repr=False)

    @property
    def where(self) -> str:
        return describe_source(self.source)


class SessionApprover:
    """``ToolContext.approve`` for one session; ``mode`` is its platform's approvals setting."""

    __slots__ = ("manager", "mode", "rt")

    def __init__(self, manager: ApprovalManager, rt: SessionRuntime, mode: str) -> None:
        self.manager, self.rt, self.mode = manager, rt, mode

    @property
    def always(self) -> bool:
        return self.mode == "always"

    async def __call__(self, request: ApprovalRequest) -> bool:
        return await self.manager.ask(
            self.rt.source, self.rt.record.id if self.rt.record else None, request
        )


# --- storage (run on the store's thread) ----------------------------------------------------


def _insert(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    conn.execute(
        "INSERT INTO approval_requests (id, session_id, session_key, platform, tool, command, "
        "reason, requested_at, decision, decided_by, decided_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )


def _decide(conn: sqlite3.Connection, request_id: str, decision: str, by: str, at: float) -> None:
    conn.execute(
        "UPDATE approval_requests SET decision = ?, decided_by = ?, decided_at = ? WHERE id = ?",
        (decision, by, at, request_id),
    )


def _history(conn: sqlite3.Connection, session_id: str) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT id, tool, command, reason, requested_at, decision, decided_by, decided_at "
        "FROM approval_requests WHERE session_id = ? ORDER BY requested_at, rowid",
        (session_id,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- the manager ----------------------------------------------------------------------------


class ApprovalManager:
    """Every open approval request of one gateway, and how they get answered.

    Args:
        config: ``gateway.approval_timeout`` and the platforms' ``approvals`` /
            ``remote_approvals`` settings.
        runner: Its bus, store and adapters (to tell a chat that the agent waits).
        timeout: Overrides the configured timeout (seconds).
        clock: Wall-clock seconds for stored times.
    """

    def __init__(
        self,
        config: Config,
        runner: GatewayRunner,
        *,
        timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.runner = runner
        self.timeout = timeout if timeout is not None else config.gateway.approval_timeout
        self.operator_present = False
        """True while a screen (the TUI) can answer approval dialogs; headless it is False."""
        self.clock = clock
        self.pending: dict[str, PendingApproval] = {}
        self._session_ok: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- settings ----------------------------------------------------------------------

    def always(self, platform: str) -> bool:
        """Whether every tool call on ``platform`` asks (``approvals: always``)."""
        return self.config.platforms.approvals_mode(platform) == "always"

    def remote_allowed(self, platform: str) -> bool:
        """Whether a chat on ``platform`` may answer its own requests with /approve, /deny."""
        if platform == LOCAL_PLATFORM:
            return True
        section = self.config.platforms.chat(platform)
        return section is not None and section.remote_approvals

    def approver_for(self, rt: SessionRuntime) -> SessionApprover:
        """The runner's hook: ``ToolContext.approve`` for a turn of ``rt``."""
        whose = rt.acting_for or rt.source  # a cron run of a chat's job: that chat's mode
        return SessionApprover(self, rt, self.config.platforms.approvals_mode(whose.platform))

    # --- asking ------------------------------------------------------------------------

    async def ask(
        self, source: SessionSource, session_id: str | None, request: ApprovalRequest
    ) -> bool:
        """Wait for the answer to ``request``; True to go ahead.

        On a denial or timeout ``request.refusal`` says why, for the model. Cancelling the
        caller (an interrupted turn) cancels the request.
        """
        key = source.session_key
        now = self.clock()
        command = request.command[:COMMAND_SHOWN]
        if session_id is not None and session_id in self._session_ok:
            await self._decided_at_once(source, session_id, request, command, now, "session")
            return True
        loop = asyncio.get_running_loop()
        pending = PendingApproval(
            id=self._new_id(),
            session_key=key,
            session_id=session_id,
            source=source,
            request=request,
            created_at=now,
            timeout=self.timeout,
            remote=self.remote_allowed(source.platform) and source.platform != LOCAL_PLATFORM,
            future=loop.create_future(),
        )
        if not self.operator_present and not pending.remote:
            # Headless, and this chat may not answer: nobody could ever say yes.
            request_id = await self._decided_at_once(
                source, session_id, request, command, now, "deny", by="nobody"
            )
            log.info("approval %s denied at once: no operator can answer", request_id)
            request.refusal = (
                f"needs the operator's approval ({request.reason}), but no operator screen is "
                f"attached and this chat may not approve. Not run: {command}"
            )
            return False
        self.pending[pending.id] = pending
        await self._store(
            _insert,
            (pending.id, session_id, key, source.platform, request.tool, command,
             request.reason, now, None, None, None),
        )  # fmt: skip
        log.info(
            "approval %s requested on %s by user %s: %s (%s)",
            pending.id,
            source.platform,
            hash_id(source.user_id),
            request.tool,
            request.reason,
        )
        self.runner.bus.publish(
            ApprovalRequested(
                request_id=pending.id,
                session_key=key,
                session_id=session_id,
                platform=source.platform,
                where=pending.where,
                tool=request.tool,
                command=command,
                reason=request.reason,
                timeout=pending.timeout,
                remote=pending.remote,
            )
        )
        self._tell_later(source, self._waiting_text(pending))
        decision, by = "timeout", "timeout"
        try:
            decision, by = await asyncio.wait_for(asyncio.shield(pending.future), pending.timeout)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            decision, by = "cancelled", "interrupt"
            await self._finish(pending, decision, by)
            raise
        finally:
            self.pending.pop(pending.id, None)
        await self._finish(pending, decision, by)
        if decision == "session" and session_id is not None:
            self._session_ok.add(session_id)
        if decision in APPROVED:
            return True
        if decision == "timeout":
            request.refusal = (
                f"no answer from the operator within {rough_duration(pending.timeout)} (treated as "
                f"a denial): {request.reason}. Not run: {command}"
            )
        else:
            request.refusal = f"denied by the operator: {request.reason}. Not run: {command}"
        return False

    async def _finish(self, pending: PendingApproval, decision: str, by: str) -> None:
        await self._store(_decide, pending.id, decision, by, self.clock())
        log.info("approval %s: %s (by %s)", pending.id, decision, by)
        self.runner.bus.publish(
            ApprovalResolved(
                request_id=pending.id,
                session_key=pending.session_key,
                decision=decision,  # type: ignore[arg-type]
                by=by,
                tool=pending.request.tool,
                command=pending.request.command[:COMMAND_SHOWN],
            )
        )
        if decision != "cancelled":
            self._tell_later(pending.source, _answer_text(decision, pending))

    async def _decided_at_once(
        self,
        source: SessionSource,
        session_id: str | None,
        request: ApprovalRequest,
        command: str,
        now: float,
        decision: ApprovalDecision,
        *,
        by: str | None = None,
    ) -> str:
        """Store and publish a request that needs nobody's answer (already approved for the
        session, or nobody could answer); returns its id."""
        request_id = self._new_id()
        by = by or decision
        await self._store(
            _insert,
            (request_id, session_id, source.session_key, source.platform, request.tool,
             command, request.reason, now, decision, by, now),
        )  # fmt: skip
        self.runner.bus.publish(
            ApprovalResolved(
                request_id=request_id,
                session_key=source.session_key,
                decision=decision,
                by=by,
                tool=request.tool,
                command=command,
                auto=True,
            )
        )
        return request_id

    def resolve(self, request_id: str, decision: str, *, by: str = "operator") -> bool:
        """Answer a waiting request: ``once``, ``session`` or ``deny``; False if not waiting."""
        if decision not in ("once", "session", "deny"):
            raise ValueError(f"not an answer: {decision!r}")
        pending = self.pending.get(request_id)
        if pending is None or pending.future.done():
            return False
        pending.future.set_result((decision, by))
        return True

    def waiting(self, session_key: str | None = None) -> list[PendingApproval]:
        """Open requests (of one session), oldest first."""
        items = [p for p in self.pending.values() if not p.future.done()]
        if session_key is not None:
            items = [p for p in items if p.session_key == session_key]
        return sorted(items, key=lambda p: p.created_at)

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        """The stored requests and answers of a session, oldest first."""
        return await self.runner.store.read_sync(_history, session_id)

    async def aclose(self) -> None:
        """Wait briefly for the chat notices still being sent."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)

    # --- helpers -----------------------------------------------------------------------

    def _new_id(self) -> str:
        while True:
            request_id = secrets.token_hex(3)
            if request_id not in self.pending:
                return request_id

    async def _store(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            await self.runner.store.write_sync(fn, *args)
        except Exception:
            log.exception("could not store an approval request")

    def _waiting_text(self, pending: PendingApproval) -> str:
        req = pending.request
        head = f"⚠ The agent wants to run something that needs approval ({req.reason}):"
        body = f"```\n{_one_block(req.command)}\n```"
        limit = rough_duration(pending.timeout)
        if pending.remote:
            tail = (
                f"Reply /approve to run it once, /approve session to allow such calls for the "
                f"rest of this conversation, or /deny (no answer within {limit} means no)."
            )
        else:
            tail = f"Waiting for the operator's answer (no answer within {limit} means no)."
        return f"{head}\n{body}\n{tail}"

    def _tell_later(self, source: SessionSource, text: str) -> None:
        """Message the chat without holding up the agent (a slow send must not count
        against the approval's time)."""
        if source.platform in _SILENT_PLATFORMS:
            return
        adapter = self.runner.adapters.get(source.platform)
        if adapter is None:
            return

        async def send() -> None:
            try:
                await asyncio.wait_for(adapter.send(source, text), timeout=30)
            except Exception as exc:
                log.warning("could not tell %s about an approval: %s", source.platform, exc)

        task = asyncio.get_running_loop().create_task(send(), name="approval-notice")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- /approve and /deny ----------------------------------------------------------

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                "approve",
                "Approve the tool call that is waiting (once, or for this session)",
                self._approve_command,
                category="Approvals",
                args_hint="[session] [id]",
            ),
            CommandSpec(
                "deny",
                "Refuse the tool call that is waiting",
                self._deny_command,
                category="Approvals",
                args_hint="[id]",
            ),
        ]

    async def _approve_command(self, ctx: CommandContext) -> CommandResult:
        words = ctx.args.lower().split()
        decision = "session" if "session" in words else "once"
        ids = [w for w in words if w not in ("session", "once")]
        return self._answer(ctx, decision, ids)

    async def _deny_command(self, ctx: CommandContext) -> CommandResult:
        return self._answer(ctx, "deny", ctx.args.lower().split())

    def _answer(self, ctx: CommandContext, decision: str, ids: list[str]) -> CommandResult:
        platform = ctx.source.platform
        if not self.remote_allowed(platform):
            return CommandResult(
                "Approvals are answered by the operator in the Hermes terminal.", ok=False
            )
        # The terminal may answer any request; a chat only its own.
        scope = None if platform == LOCAL_PLATFORM else ctx.session_key
        candidates = self.waiting(scope)
        if ids:
            candidates = [p for p in candidates if p.id in ids]
        if not candidates:
            return CommandResult("Nothing is waiting for approval here.", ok=False)
        if len(candidates) > 1:
            listing = "\n".join(
                f"- `{p.id}`: {p.request.tool} `{one_line(p.request.command)}` ({p.where})"
                for p in candidates
            )
            return CommandResult(f"Several requests wait; add the id:\n{listing}", ok=False)
        (pending,) = candidates
        # Who answered, as logs may show it: the platform and a hashed id.
        by = (
            "operator"
            if platform == LOCAL_PLATFORM
            else f"{platform}:{hash_id(ctx.source.user_id)}"
        )
        self.resolve(pending.id, decision, by=by)
        verb = {"once": "Approved once", "session": "Approved for this session", "deny": "Denied"}
        return CommandResult(f"{verb[decision]}: `{one_line(pending.request.command)}`")


def _one_block(text: str) -> str:
    """``text`` for inside a ``` block: no fence that would end it early; clipped."""
    return clip(text.replace("```", "'''"), 500)


def _answer_text(decision: str, pending: PendingApproval) -> str:
    what = f"`{one_line(pending.request.command)}`"
    if decision == "once":
        return f"✅ Approved: {what}"
    if decision == "session":
        return f"✅ Approved for the rest of this conversation: {what}"
    if decision == "timeout":
        return f"⌛ No answer in time, so it was not run: {what}"
    return f"⛔ Denied: {what}"


# --- approvals: always ----------------------------------------------------------------------


class ApprovalGatedTools:
    """The agent's tool registry, asking first where the session's platform says ``always``
    (every call) or ``writes`` (calls to tools that run commands or change files).

    A thin proxy rather than a copy, so tools registered later on the real registry (the
    cron tool) are seen too. A call the operator approved here runs without a second
    question from the terminal's dangerous-pattern check.
    """

    def __init__(self, inner: ToolRegistry) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __contains__(self, name: object) -> bool:
        return name in self.inner

    def __len__(self) -> int:
        return len(self.inner)

    async def call(
        self, name: str, raw_arguments: str | dict[str, Any] | None, ctx: ToolContext
    ) -> ToolResult:
        approve = ctx.approve
        mode = getattr(approve, "mode", "dangerous")
        tool = self.inner.get(name)
        asks = mode == "always" or (mode == "writes" and tool is not None and tool.mutates)
        if approve is not None and asks and tool is not None:
            command = _call_text(name, raw_arguments)
            danger = dangerous_reason(command) if name == "terminal" else None
            why = (
                "this platform asks before every tool call"
                if mode == "always"
                else "this platform asks before shell commands and file writes"
            )
            request = ApprovalRequest(tool=name, command=command, reason=danger or why)
            if not await approve(request):
                return ToolResult(
                    content=f"error: {request.refusal or 'denied by the operator'}",
                    ok=False,
                    summary="not approved",
                )
            ctx = dataclasses.replace(ctx, approve=None)
        return await self.inner.call(name, raw_arguments, ctx)


def _call_text(name: str, raw: str | dict[str, Any] | None) -> str:
    """What the operator is shown for a call: the command itself for the terminal."""
    args: Any = raw
    if isinstance(raw, str):
        try:
            args = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return raw[:COMMAND_SHOWN]
    if name == "terminal" and isinstance(args, dict) and "command" in args:
        return str(args["command"])[:COMMAND_SHOWN]
    try:
        text = json.dumps(args, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(args)
    return f"{name} {text}"[:COMMAND_SHOWN]


class ApprovalsFeature:
    """Tool approvals as a gateway feature: dangerous calls wait for a yes."""

    name = "approvals"
    event_types: tuple[type[GatewayEvent], ...] = (ApprovalRequested, ApprovalResolved)

    def __init__(self) -> None:
        self.manager: ApprovalManager | None = None

    def install(self, ctx: FeatureContext) -> None:
        """The runner's ``approve`` hook, the commands, and the gate around the tools."""
        manager = self.manager = ApprovalManager(ctx.config, ctx.runner)
        ctx.runner.approver = manager.approver_for
        for spec in manager.commands():
            ctx.runner.commands.register(spec)
        agent = ctx.agent
        if not isinstance(agent.tools, ApprovalGatedTools):
            agent.tools = ApprovalGatedTools(agent.tools)  # type: ignore[assignment]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.aclose()

    def describe(self, event: GatewayEvent) -> tuple[int, str] | None:
        match event:
            case ApprovalRequested(request_id=i, platform=p, tool=t, command=c, reason=r):
                return logging.WARNING, f"approval {i} needed on {p}: {t} `{c}` ({r})"
            case ApprovalResolved(request_id=i, decision=d, by=b, auto=a):
                return logging.INFO, f"approval {i}: {d} ({'automatic' if a else b})"
        return None
