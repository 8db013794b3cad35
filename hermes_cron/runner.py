"""What one cron run does: an isolated agent turn, an output file, a delivery.

:class:`CronJobRunner` is the gateway's :data:`~hermes_cron.ticker.Executor`. For a claimed
job it

1. starts a fresh session in the job's own chat (platform ``cron``, key ``cron:dm:<job_id>``),
   so no run sees another's history and nothing leaks into a person's conversation; earlier
   runs stay in the store, searchable;
2. runs the agent through the gateway's own runner (``run_request``: same agent, tools,
   events and store as any chat, so the TUI shows the run live and interrupts work);
3. writes ``HERMES_HOME/cron/output/<job_id>/<timestamp>.md`` and prunes old outputs;
4. delivers through the shared :class:`~hermes_gateway.delivery.router.DeliveryRouter`, recording the
   delivery's result apart from the run's.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path

from hermes_cron.clock import Clock, SystemClock
from hermes_cron.events import LOCAL_TEXT_LIMIT
from hermes_cron.jobs import Claim, Job, cron_source
from hermes_cron.settings import CronSettings
from hermes_cron.ticker import RunOutcome
from hermes_gateway.delivery.router import SILENT_MARKER, DeliveryRouter, is_silent, summarize
from hermes_gateway.platforms.base import NULL_DELIVERY
from hermes_gateway.runner import GatewayRunner
from hermes_gateway.store import StoredMessage
from hermes_gateway.text import clip

log = logging.getLogger(__name__)

__all__ = ["CronJobRunner", "output_dir_for", "prune_outputs", "write_output"]

_OUTPUT_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})Z(?:-\d+)?\.md$")


def output_dir_for(base: Path, job_id: str) -> Path:
    """``<base>/<job_id>``: one folder per job."""
    return base / job_id


def _guidance(job: Job, now: datetime) -> str:
    return (
        f"You are running the scheduled job “{job.name}” ({job.describe(now)}); nobody is "
        "watching while you work. Do the task and answer with the result only: your answer "
        f"is delivered as it is (to: {job.deliver}). If there is nothing worth reporting this "
        f"time, answer exactly {SILENT_MARKER} and nothing will be sent. You cannot create "
        "other scheduled jobs from here."
    )


def write_output(
    folder: Path, when: datetime, job: Job, prompt: str, outcome: RunOutcome, trigger: str
) -> Path:
    """Write one run's Markdown file (never overwriting one) and return its path.

    Blocking file I/O: call it in a thread.
    """
    folder.mkdir(parents=True, exist_ok=True)
    stamp = when.strftime("%Y-%m-%dT%H-%M-%SZ")
    path = folder / f"{stamp}.md"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{n}.md"
    local = when.astimezone(job.parsed.zone)
    lines = [
        f"# {job.name}",
        "",
        f"- Job: `{job.id}`, {job.describe()} (`{job.schedule}`)",
        f"- Run: {trigger} at {local:%Y-%m-%d %H:%M:%S} {job.tz}",
        f"- Status: {outcome.status}" + (f" ({outcome.error})" if outcome.error else ""),
        f"- Prompt: {' '.join(prompt.split())}",
        "",
        "---",
        "",
        outcome.text or "(no answer)",
        "",
    ]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path


ANSWER_RULE = "\n---\n\n"
"""Between an output file's header and the answer (see :func:`write_output`)."""


def read_answer(path: Path) -> str | None:
    """The answer part of an output file written by :func:`write_output`; None if the file
    is gone or not ours. Blocking: call it in a thread."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    head, rule, answer = text.partition(ANSWER_RULE)
    if not rule or not head.startswith("# "):
        return None
    return answer.strip()


def prune_outputs(folder: Path, *, keep: int, max_age: timedelta | None, now: datetime) -> int:
    """Delete a job's oldest outputs beyond ``keep`` and those older than ``max_age``.

    Only files named like our outputs are considered: a file someone else put there is never
    touched. Blocking: call it in a thread. Returns how many files were deleted.
    """
    if not folder.is_dir():
        return 0
    ours: list[tuple[datetime, Path]] = []
    for path in folder.iterdir():
        match = _OUTPUT_NAME.match(path.name)
        if not match or not path.is_file():
            continue
        stamp = datetime.strptime(match.group(1) + "+0000", "%Y-%m-%dT%H-%M-%S%z")
        ours.append((stamp, path))
    ours.sort(key=lambda item: (item[0], item[1].name))
    doomed = ours[:-keep] if keep > 0 else list(ours)
    if max_age is not None and max_age.total_seconds() > 0:
        doomed += [(s, p) for s, p in ours[-keep:] if now - s > max_age]
    removed = 0
    for _, path in doomed:
        try:
            path.unlink()
            removed += 1
        except OSError:
            log.warning("could not delete old cron output %s", path)
    return removed


class CronJobRunner:
    """Runs claimed jobs through the gateway; see the module docstring.

    Args:
        runner: The gateway's runner (agent, store, bus, sessions).
        router: Delivery to chats.
        output_dir: ``HERMES_HOME/cron/output``.
        settings: Output retention.
        clock: For output timestamps and retention.
    """

    def __init__(
        self,
        runner: GatewayRunner,
        router: DeliveryRouter,
        *,
        output_dir: Path,
        settings: CronSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.runner = runner
        self.router = router
        self.output_dir = output_dir
        self.settings = settings or CronSettings()
        self.clock: Clock = clock or SystemClock()

    async def __call__(self, claim: Claim) -> RunOutcome:
        job, run = claim.job, claim.run
        started = self.clock.now()
        try:
            outcome = await self._agent_turn(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("cron job %s: the agent run failed", job.id)
            outcome = RunOutcome("error", f"{type(exc).__name__}: {exc}")
        try:
            path = await asyncio.to_thread(
                self._save, job, started, outcome, run.trigger, self.clock.now()
            )
            outcome.output_path = str(path)
        except OSError as exc:
            log.exception("cron job %s: could not save the output", job.id)
            outcome.error = (outcome.error + "; " if outcome.error else "") + (
                f"output not saved: {exc}"
            )
        await self._deliver(job, outcome)
        return outcome

    def _save(
        self, job: Job, when: datetime, outcome: RunOutcome, trigger: str, now: datetime
    ) -> Path:
        folder = output_dir_for(self.output_dir, job.id)
        path = write_output(folder, when, job, job.prompt, outcome, trigger)
        max_age = timedelta(days=self.settings.output_max_age_days)
        prune_outputs(folder, keep=self.settings.output_keep, max_age=max_age, now=now)
        return path

    async def _agent_turn(self, job: Job) -> RunOutcome:
        """One turn in a new session of the job's chat, through ``runner.run_request``.

        A new stored session per run keeps runs isolated (no run sees another's history);
        ``keep=False`` frees the live session afterwards, so memory stays flat however many
        runs there are. Cancelling (gateway shutdown) interrupts the turn, which still stores
        what was said.
        """
        user = StoredMessage(role="user", content=job.prompt, meta={"cron_job": job.id})
        _, result = await self.runner.run_request(
            cron_source(job),
            [user],
            delivery=NULL_DELIVERY,
            history=[],
            instructions=_guidance(job, self.clock.now()),
            new_session=True,
            keep=False,
            acting_for=job.origin if job.owner is not None else None,
        )
        if result.error:
            return RunOutcome("error", result.error, text=result.text)
        if result.interrupted:
            return RunOutcome("interrupted", "the run was interrupted", text=result.text)
        return RunOutcome("ok", text=result.text)

    async def _platforms_settled(self, timeout: float = 15.0) -> None:
        """Wait (bounded) while a platform is still starting: a run caught up right at
        gateway start must not fail delivery only because Telegram is mid-connect."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            states = self.runner.platform_state
            if all(
                name in states and states[name].state != "starting" for name in self.runner.adapters
            ):
                return
            await asyncio.sleep(0.05)

    async def _deliver(self, job: Job, outcome: RunOutcome) -> None:
        if outcome.status == "interrupted":
            outcome.delivery_status = "skipped"
            return
        if outcome.status == "ok":
            text = outcome.text.strip() or "(the agent gave no answer)"
        else:
            text = f"⚠ The run failed: {outcome.error}"
        await self._platforms_settled()
        outcomes = await self.router.deliver(
            job.deliver, text, origin=job.origin, title=f"⏰ {job.name}"
        )
        outcome.delivery_status, outcome.delivery_error = summarize(outcomes)
        if (
            outcome.status == "ok"
            and not is_silent(text)
            and any(o.status == "local" for o in outcomes)
        ):
            outcome.local_text = clip(text, LOCAL_TEXT_LIMIT)
        if outcome.delivery_error:
            log.warning("cron job %s: delivery failed: %s", job.id, outcome.delivery_error)
