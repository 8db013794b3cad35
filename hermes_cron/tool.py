"""The agent's ``cronjob`` tool: so "every weekday at 9 send me a summary of ..." just works.

Actions: ``create``, ``list``, ``remove``, ``run``. A job created from a chat delivers back to
that chat by default (``origin``). A cron run itself may only ``list``: a job that schedules
jobs, or runs them, could multiply without anyone watching.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from hermes_cron.commands import format_job
from hermes_cron.jobs import CRON_PLATFORM, OPERATOR, CronError, Scope
from hermes_cron.schedules import format_countdown
from hermes_cron.service import CronService
from hermes_gateway.agent.tools.base import Tool, ToolContext, ToolResult, error_result
from hermes_gateway.models import LOCAL_PLATFORM, SessionSource
from hermes_gateway.text import one_line

__all__ = ["CronJobTool"]

_ACTIONS = ("create", "list", "remove", "run")


class CronJobTool(Tool):
    """Create, list, remove and run scheduled jobs through the gateway's cron service."""

    name: ClassVar[str] = "cronjob"
    description: ClassVar[str] = (
        "Manage scheduled agent jobs. action=create schedules `prompt` to run on `schedule` "
        "and delivers the answer (default: back to this chat); action=list shows jobs with "
        "their ids; action=remove and action=run take `job_id`. The prompt runs later in a "
        "fresh session that does NOT see this conversation, so make it self-contained. A run "
        "may answer exactly [SILENT] to send nothing."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(_ACTIONS)},
            "schedule": {
                "type": "string",
                "description": (
                    'When: a cron expression "0 9 * * 1-5" (minute hour day month weekday, '
                    'local time), "every 30m" / "every 2h" / "every 1d", "in 45m", or an ISO '
                    'time "2026-12-01T09:00".'
                ),
            },
            "prompt": {"type": "string", "description": "What the agent should do each run."},
            "name": {"type": "string", "description": "A short name for the job."},
            "deliver": {
                "type": "string",
                "description": (
                    'Where the answer goes: "origin" (this chat, default), "local" (saved '
                    'only), a platform\'s home channel ("telegram"), or "telegram:<chat_id>"; '
                    "comma-separate several."
                ),
            },
            "repeat": {"type": "integer", "description": "Stop after this many runs."},
            "job_id": {"type": "string", "description": "The job for remove / run."},
        },
        "required": ["action"],
    }

    def __init__(self, service: CronService) -> None:
        self.service = service
        self._schema: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        """The schema with the configured time zone named, so the model writes local times."""
        if self._schema is None:
            schema = copy.deepcopy(super().schema())
            tz = self.service.settings.timezone
            props = schema["function"]["parameters"]["properties"]
            props["schedule"]["description"] += f" Times are in {tz}."
            self._schema = schema
        return self._schema

    def preview(self, args: dict[str, Any]) -> str:
        action = str(args.get("action", ""))
        detail = args.get("schedule") or args.get("job_id") or ""
        return one_line(f"{action} {detail}".strip())

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        action = str(args.get("action", "")).strip().lower()
        if action not in _ACTIONS:
            return error_result(f"action must be one of {', '.join(_ACTIONS)}")
        in_cron_run = ctx.session_key.split(":", 1)[0] == CRON_PLATFORM
        if in_cron_run and action != "list":
            return error_result(
                f"a cron run cannot {action} cron jobs; only list is allowed here",
                summary="not allowed in a cron run",
            )
        service = self.service
        rt = service.runner.sessions.get(ctx.session_key)
        scope = await self._scope(ctx.session_key, rt.source if rt is not None else None)
        try:
            if action == "list":
                jobs = await service.list_jobs(scope)
                if not jobs:
                    return ToolResult("no scheduled jobs", summary="0 jobs")
                now = service.now()
                lines = [
                    format_job(j, now, running=service.is_running(j), markdown=False) for j in jobs
                ]
                return ToolResult("\n".join(lines), summary=f"{len(jobs)} jobs")
            if action == "create":
                schedule = str(args.get("schedule") or "").strip()
                prompt = str(args.get("prompt") or "").strip()
                if not schedule or not prompt:
                    return error_result("create needs both schedule and prompt")
                job = await service.add(
                    schedule,
                    prompt,
                    name=args.get("name"),
                    deliver=args.get("deliver"),
                    origin=rt.source if rt is not None else None,
                    repeat=args.get("repeat"),
                    scope=scope,
                )
                now = service.now()
                first = format_countdown(job.next_run, now) if job.next_run else "-"
                return ToolResult(
                    f"created job {job.id} “{job.name}”: {job.describe(now)}, first run {first}, "
                    f"delivered to {job.deliver}",
                    summary=f"created {job.id}",
                )
            job_id = str(args.get("job_id") or "").strip()
            if not job_id:
                return error_result(f"{action} needs job_id (see action=list)")
            if action == "remove":
                job = await service.remove(job_id, scope)
                return ToolResult(f"removed job {job.id} “{job.name}”", summary=f"removed {job.id}")
            job = await service.run_now(job_id, scope)
            return ToolResult(
                f"started job {job.id} “{job.name}”; its answer goes to {job.deliver}",
                summary=f"running {job.id}",
            )
        except CronError as exc:
            return error_result(str(exc))

    async def _scope(self, session_key: str, source: SessionSource | None) -> Scope:
        """The same rules as /cron, for the chat whose turn calls the tool.

        A cron run acts for its job's owner (its output goes to that chat). A session the
        runner does not know is treated as a chat of its own, never as the operator.
        """
        platform, _, rest = session_key.partition(":")
        if platform == CRON_PLATFORM:
            job = await self.service.store.get(rest.rpartition(":")[2])
            return Scope(job.owner) if job is not None and job.owner else OPERATOR
        if source is not None:
            return Scope.of(source)
        return OPERATOR if platform == LOCAL_PLATFORM else Scope(session_key)
