"""The contract every agent tool follows, plus the small helpers they share.

A tool is a long-lived object (built once per process, its schema cached) whose ``run`` gets the
parsed arguments and a :class:`ToolContext` describing the turn it runs in. Tools report failure
through :class:`ToolResult` (``ok=False``) rather than by raising, because the model has to read
what went wrong and try again; the registry turns any stray exception into such a result too.
"""

from __future__ import annotations

import asyncio
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hermes_gateway.agent.tools.boundary import ToolBoundary
from hermes_gateway.text import one_line

PREVIEW_MAX = 80
"""Longest argument preview shown in the UI; one line of a narrow pane."""


@dataclass
class ApprovalRequest:
    """A dangerous action that waits for the operator's yes or no.

    Attributes:
        tool: Name of the tool asking (``"terminal"``).
        command: The exact command that would run, shown verbatim in the dialog.
        reason: Which dangerous pattern matched, so the operator knows why they are asked.
        refusal: Set by the approver when the answer is no: why, in words for the model
            (denied by the operator, or no answer in time).
    """

    tool: str
    command: str
    reason: str
    refusal: str = ""


@dataclass
class ToolContext:
    """Everything a tool may know about the turn it runs in.

    Attributes:
        session_id: Store id of the session (for logging and session_search filters).
        session_key: Routing key of the conversation (``platform:chat_type:chat_id``).
        cwd: Working directory for the terminal and for relative paths.
        interrupt: Set when the user interrupts; a tool must stop promptly once it is set.
        search: Backend for ``session_search``: ``(query, limit) -> hits`` where each hit has
            ``session_id``, ``session_title``, ``role``, ``snippet`` and ``created_at``.
        approve: Asks the operator about a dangerous command; ``None`` means "allowed".
        boundary: Where the tools may reach (a remote chat's workspace, HERMES_HOME's
            protected files); ``None`` checks nothing (tests, embedders).
        extra: Free-form values for tools added later, so the dataclass need not change.
    """

    session_id: str
    session_key: str
    cwd: Path
    interrupt: asyncio.Event
    search: Callable[[str, int], Awaitable[list[Any]]] | None = None
    approve: Callable[[ApprovalRequest], Awaitable[bool]] | None = None
    boundary: ToolBoundary | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolResult:
    """What a tool hands back.

    Attributes:
        content: Text returned to the model, already capped by the tool.
        ok: False when the call failed (bad arguments, missing file, non-zero exit...).
        summary: One short line for the UI, e.g. ``"exit 0, 12 lines"``.
    """

    content: str
    ok: bool = True
    summary: str = ""


def error_result(message: str, summary: str = "") -> ToolResult:
    """Build the uniform failure result (``"error: ..."``) the model learns to recognise."""
    return ToolResult(
        content=f"error: {message}", ok=False, summary=summary or one_line(message, 60)
    )


class Tool(ABC):
    """Base class of every tool; subclasses set the three class attributes and ``run``."""

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]
    mutates: ClassVar[bool] = False
    """Runs commands or changes files: asks first under ``approvals: writes``."""

    @abstractmethod
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Execute the tool with validated arguments.

        Args:
            args: Arguments already parsed from JSON and checked against ``parameters``.
            ctx: The turn's context (working dir, interrupt event, callbacks).

        Returns:
            The result for the model; failures are ``ok=False`` results, not exceptions.
        """

    def preview(self, args: dict[str, Any]) -> str:
        """One-line preview of the arguments for the UI (at most 80 characters).

        The default shows the arguments as compact JSON; tools override it to show the one
        argument a person actually wants to see (the command, the path).
        """
        try:
            text = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            text = repr(args)
        return one_line(text, PREVIEW_MAX)

    def schema(self) -> dict[str, Any]:
        """The tool in OpenAI function-calling form."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def cap_text(text: str, cap: int) -> str:
    """Keep the head and tail of ``text`` when it is longer than ``cap`` characters.

    Both ends matter to the model: the head says what was produced, the tail usually holds
    the error or the summary line.
    """
    if cap <= 0 or len(text) <= cap:
        return text
    head = cap // 2
    tail = cap - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}"


def working_dir(ctx: ToolContext) -> Path:
    """The session's working directory with ``~`` expanded (no disk access)."""
    return Path(os.path.expanduser(ctx.cwd))


def resolve_path(ctx: ToolContext, raw: str) -> Path:
    """Resolve a user or model supplied path: ``~`` expanded, relative to ``ctx.cwd``.

    Pure string work, safe on the event loop. Symlinks are deliberately not resolved so
    messages show the path the model used.
    """
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        path = working_dir(ctx) / path
    return path


async def refusal(ctx: ToolContext, path: Path, *, write: bool) -> ToolResult | None:
    """The error result when ``ctx.boundary`` forbids ``path`` (None: go ahead).

    Runs in a thread: resolving symlinks touches the disk. Creates a chat's workspace on its
    first use.
    """
    boundary = ctx.boundary
    if boundary is None:
        return None

    def check() -> str | None:
        boundary.ensure_workspace()
        return boundary.refusal(path, write=write)

    reason = await asyncio.to_thread(check)
    return error_result(reason, summary="refused") if reason else None


def format_size(n: int) -> str:
    """Human-readable byte count for UI summaries (``"812 B"``, ``"1.2 kB"``, ``"3.4 MB"``)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover - loop always returns


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 line"`` / ``"3 lines"`` (``many`` for irregular plurals); keeps summaries grammatical."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {many or word + 's'}"
