"""The ``/cron`` slash command, shared by the local REPL and authorised remote chats.

::

    /cron [list]
    /cron add [--name N] [--deliver T] [--repeat N] "<schedule>" <prompt>
    /cron pause <id>    /cron resume <id>    /cron run <id>    /cron remove <id>

The schedule may also be typed without quotes when it is unambiguous (``/cron add every 2h
check the disks``): the longest leading words that form a schedule are taken. Jobs added from
a remote chat deliver back to it (``origin``) unless told otherwise; from the terminal they
are kept locally. The line formatting here is reused by the CLI and the agent's tool.
"""

from __future__ import annotations

from datetime import datetime

from hermes_cron.jobs import CronError, Job, Scope
from hermes_cron.schedules import ScheduleError, format_countdown, parse_schedule
from hermes_cron.service import CronService
from hermes_gateway.commands.registry import CommandContext, CommandResult, CommandSpec
from hermes_gateway.text import one_line

__all__ = [
    "USAGE",
    "cron_command",
    "format_job",
    "format_status",
    "parse_add_args",
]

USAGE = (
    'Usage: `/cron list` · `/cron add "<schedule>" <prompt>` · `/cron pause <id>` · '
    "`/cron resume <id>` · `/cron run <id>` · `/cron remove <id>`. "
    'Schedules: "0 9 * * 1-5", "every 30m", "in 45m", "2026-12-01T09:00". '
    "Options for add: --name, --deliver (local, origin, telegram, telegram:<chat_id>), --repeat."
)

_QUOTES = {'"': '"', "'": "'", "“": "”", "«": "»"}
_OPTIONS = {"--name": "name", "--deliver": "deliver", "--to": "deliver", "--repeat": "repeat"}


def format_status(job: Job, now: datetime, *, running: bool = False) -> str:
    """The job's state and last result in a few words ("next in 3 h · last ok")."""
    parts: list[str] = []
    if running:
        parts.append("running now")
    elif not job.enabled:
        parts.append("finished" if job.state == "done" else "paused")
    elif job.next_run is not None:
        parts.append(f"next {format_countdown(job.next_run, now)}")
    if job.run_requested_at is not None and not running:
        parts.append("run requested")
    last = job.last_status
    if last and last != "running":
        text = f"last {last}"
        if last in ("error", "missed", "interrupted") and job.last_error:
            text += f" ({one_line(job.last_error, 60)})"
        parts.append(text)
    if job.last_delivery_status in ("failed", "partial"):
        detail = f" ({one_line(job.last_delivery_error, 60)})" if job.last_delivery_error else ""
        parts.append(f"delivery {job.last_delivery_status}{detail}")
    return " · ".join(parts)


def format_job(job: Job, now: datetime, *, running: bool = False, markdown: bool = True) -> str:
    """One line per job for /cron list, the CLI and the agent's tool."""
    status = format_status(job, now, running=running)
    repeat = f" · {job.runs}/{job.repeat} runs" if job.repeat else ""
    if markdown:
        return f"- **{job.name}** `{job.id}` · {job.describe(now)} · → {job.deliver}{repeat}" + (
            f" · {status}" if status else ""
        )
    return f"{job.id}  {job.name}  ·  {job.describe(now)}  ·  → {job.deliver}{repeat}" + (
        f"  ·  {status}" if status else ""
    )


def parse_add_args(args: str, *, tz: str, now: datetime) -> tuple[str, str, dict[str, str]]:
    """Split ``/cron add`` arguments into ``(schedule, prompt, options)``.

    Raises:
        CronError: Nothing usable; the message shows how to write it.
    """
    rest = args.strip()
    options: dict[str, str] = {}
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        key = _OPTIONS.get(flag.split("=", 1)[0].lower())
        if key is None:
            raise CronError(f"Unknown option {flag}. {USAGE}")
        if "=" in flag:
            value = flag.split("=", 1)[1]
        else:
            value, rest = _take_word(rest.strip())
        options[key] = value
        rest = rest.strip()
    if not rest:
        raise CronError(f"Say when and what. {USAGE}")
    if rest[0] in _QUOTES:
        close = rest.find(_QUOTES[rest[0]], 1)
        if close < 0:
            raise CronError(f"The schedule's closing quote is missing. {USAGE}")
        return rest[1:close].strip(), rest[close + 1 :].strip(), options
    words = rest.split()
    errors: list[str] = []
    for n in range(min(len(words), 6), 0, -1):
        candidate = " ".join(words[:n])
        try:
            parse_schedule(candidate, tz=tz, now=now)
        except ScheduleError as exc:
            errors.append(str(exc))
            continue
        return candidate, " ".join(words[n:]), options
    hint = next((e for e in reversed(errors) if "ambiguous" in e or "in the past" in e), None)
    raise CronError(hint or f'Put the schedule in quotes: /cron add "every 2h" <prompt>. {USAGE}')


def _take_word(text: str) -> tuple[str, str]:
    """The first (possibly quoted) word of ``text`` and what follows it."""
    if text[:1] in _QUOTES:
        close = text.find(_QUOTES[text[0]], 1)
        if close > 0:
            return text[1:close], text[close + 1 :]
    word, _, rest = text.partition(" ")
    return word, rest


def cron_command(service: CronService) -> CommandSpec:
    """The ``/cron`` command bound to one gateway's cron service."""

    async def handler(ctx: CommandContext) -> CommandResult:
        sub, _, rest = ctx.args.strip().partition(" ")
        sub = sub.lower() or "list"
        rest = rest.strip()
        # A remote chat sees and acts on its own jobs only; the terminal on all of them.
        scope = Scope.of(ctx.source, operator=ctx.event.from_operator)
        try:
            if sub in ("list", "ls"):
                return await _list(service, scope)
            if sub in ("add", "new", "create"):
                return await _add(service, ctx, rest, scope)
            if sub in ("help", "?"):
                return CommandResult(USAGE)
            if sub not in ("pause", "resume", "run", "remove", "rm", "delete"):
                return CommandResult(f"Unknown /cron action “{sub}”. {USAGE}", ok=False)
            if not rest:
                return CommandResult(f"Which job? Give its id (see /cron list). {USAGE}", False)
            if sub == "pause":
                job = await service.pause(rest, scope)
                return CommandResult(f"Paused “{job.name}” (`{job.id}`).")
            if sub == "resume":
                job = await service.resume(rest, scope)
                when = format_countdown(job.next_run, service.now()) if job.next_run else "-"
                return CommandResult(f"Resumed “{job.name}” (`{job.id}`); next run {when}.")
            if sub == "run":
                job = await service.run_now(rest, scope)
                return CommandResult(f"Running “{job.name}” (`{job.id}`) now.")
            job = await service.remove(rest, scope)
            return CommandResult(f"Removed “{job.name}” (`{job.id}`).")
        except CronError as exc:
            return CommandResult(str(exc), ok=False)

    return CommandSpec(
        name="cron",
        description="Scheduled jobs: list, add, pause, resume, run, remove",
        handler=handler,
        category="Cron",
        args_hint='[list | add "<schedule>" <prompt> | pause|resume|run|remove <id>]',
    )


async def _list(service: CronService, scope: Scope) -> CommandResult:
    jobs = await service.list_jobs(scope)
    if not jobs:
        return CommandResult('No scheduled jobs. Add one with /cron add "every 1d" <prompt>.')
    now = service.now()
    lines = [f"**Scheduled jobs** ({len(jobs)})"]
    lines += [format_job(job, now, running=service.is_running(job)) for job in jobs]
    return CommandResult("\n".join(lines))


async def _add(service: CronService, ctx: CommandContext, rest: str, scope: Scope) -> CommandResult:
    schedule, prompt, options = parse_add_args(
        rest, tz=service.settings.timezone, now=service.now()
    )
    repeat: int | None = None
    if "repeat" in options:
        try:
            repeat = int(options["repeat"])
        except ValueError:
            raise CronError("--repeat takes a number of runs, e.g. --repeat 3") from None
    job = await service.add(
        schedule,
        prompt,
        name=options.get("name"),
        deliver=options.get("deliver"),
        origin=ctx.source,
        repeat=repeat,
        scope=scope,
    )
    now = service.now()
    when = format_countdown(job.next_run, now) if job.next_run else "-"
    return CommandResult(
        f"Scheduled “{job.name}” (`{job.id}`): {job.describe(now)}, first run {when}, "
        f"delivered to {job.deliver}."
    )
