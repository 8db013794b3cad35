"""Background runs: a prompt answered in its own session while the chat goes on.

``/background <prompt>`` (see :mod:`.commands`) hands the prompt to
:meth:`BackgroundService.launch`, which

1. refuses it when the chat already has :attr:`~BackgroundService.max_per_chat` runs going;
2. records the run in the store (:class:`~.runs.RunLedger`) before anything runs;
3. runs one agent turn through the runner's ``run_request`` in a session of its own
   (``background:dm:<id>``: the chat's conversation is neither blocked nor mixed), working
   for the chat (``acting_for``): the chat's workspace, approval mode and search scope, and
   the model chosen there;
4. posts the result to the chat through the delivery router (the local terminal gets it on
   the bus), keeps it as a note in the chat's transcript, and only then forgets the entry.

``/stop`` in the chat stops its runs (:meth:`stop_chat`). Stopping the gateway interrupts
them and leaves their entries, so the next start tells each chat its run was interrupted
(:meth:`recover`): never lost, never run twice. A ``/background`` its platform delivers again
after a crash never reaches :meth:`launch`: the runner's command guard drops every repeated
command by its platform message id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from hermes_gateway import events as ev
from hermes_gateway.background.events import RESULT_LIMIT, BackgroundRunChanged, RunState
from hermes_gateway.background.runs import (
    BackgroundRun,
    RunLedger,
    new_run_id,
    preview,
)
from hermes_gateway.models import SessionSource
from hermes_gateway.redact import redact
from hermes_gateway.store import StoredMessage
from hermes_gateway.tasks import TaskSet
from hermes_gateway.text import clip

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import TurnResult
    from hermes_gateway.runner import GatewayRunner
    from hermes_gateway.store import SessionRecord

log = logging.getLogger(__name__)

__all__ = ["MAX_PER_CHAT", "BackgroundService", "Refused"]

MAX_PER_CHAT = 3
"""Runs one chat may have going at once: each is a model conversation with tools, and a
chat (or a stranger who got in) must not be able to fan out without bound."""

STOP_WAIT = 5.0
"""Seconds the runs get, once interrupted, to note it before they are cancelled."""

GUIDANCE = (
    "You are working on a background task that the user started from their chat with "
    "/background. They keep chatting meanwhile; your final answer is posted to that chat as "
    "it is when you finish. Do the task and answer with the result."
)


class Refused(Exception):
    """A run was not started; the message says why (shown to the user as it is)."""


def done_text(prompt: str, answer: str) -> str:
    return f"✅ Background task done: “{preview(prompt)}”\n\n{answer or '(no answer)'}"


def failed_text(prompt: str, error: str) -> str:
    return f"❌ Background task failed: “{preview(prompt)}”\n\n{error}"


def interrupted_text(prompt: str) -> str:
    return (
        f"⚠ Your background task “{preview(prompt)}” was interrupted by a restart and did "
        "not finish. Send /background again if you still need it."
    )


class _Progress:
    """The run's ``TurnDelivery``: nothing is streamed to a chat; tool steps are counted."""

    def __init__(self, service: BackgroundService, run: BackgroundRun) -> None:
        self.service, self.run = service, run

    def on_delta(self, text: str) -> None:
        pass

    def on_tool_started(self, name: str, preview: str) -> None:
        self.run.steps += 1
        self.service.publish(self.run, "progress", tool=name)

    def on_tool_finished(self, name: str, ok: bool, duration: float, summary: str) -> None:
        pass

    async def finish(self, text: str, *, interrupted: bool, error: str | None) -> None:
        pass


class BackgroundService:
    """The runs of this process and those a previous one left (see the module docstring).

    Args:
        runner: The gateway's runner (turns, store, bus, router).
        max_per_chat: Runs one chat may have going at once.
        clock: Wall clock for start times.
    """

    def __init__(
        self,
        runner: GatewayRunner,
        *,
        max_per_chat: int = MAX_PER_CHAT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.max_per_chat = max_per_chat
        self.clock = clock
        self.ledger = RunLedger(runner.store)
        self.runs: dict[str, BackgroundRun] = {}
        """Runs going in this process, by id."""
        self._turns: dict[str, asyncio.Future[tuple[SessionRecord, TurnResult]]] = {}
        self._tasks = TaskSet("background")
        """The runs' own tasks."""
        self._outer: dict[str, asyncio.Task[None]] = {}
        self._reports = TaskSet("background-recovery")
        """Reports of runs a previous process left (each waits for its platform)."""
        self._stopping = False
        self._connected: dict[str, asyncio.Event] = {}
        self._unlisten: Callable[[], None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Watch platforms connect, and tell the chats about runs a previous process left."""
        self._unlisten = self.runner.bus.add_listener(self._on_event)
        for run in await self.ledger.load():
            if run.state == "done":  # told (left by an older version): nothing to do
                await self.ledger.delete(run.id)
                continue
            self._reports.spawn(self.recover(run), name=f"background-recover:{run.id}")

    async def stop(self) -> None:
        """Interrupt the runs going; their entries stay for the next start to report."""
        self._stopping = True
        going = list(self._outer.values())
        for turn in self._turns.values():
            turn.cancel()
        if going:  # each marks itself interrupted (its entry stays)
            await asyncio.wait(going, timeout=STOP_WAIT)
        await self._tasks.cancel_all()
        await self._reports.cancel_all()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    # --- runs -----------------------------------------------------------------------------

    def running_in(self, origin_key: str) -> list[BackgroundRun]:
        """The chat's runs going now, oldest first."""
        return [r for r in self.runs.values() if r.origin_key == origin_key]

    async def launch(self, origin: SessionSource, prompt: str) -> BackgroundRun:
        """Record and start a run for the chat ``origin``.

        Raises:
            Refused: Stopping, an empty prompt, the chat's cap reached, or the store refused
                the entry (nothing runs then).
        """
        prompt = prompt.strip()
        if not prompt:
            raise Refused("Usage: /background <prompt>")
        if self._stopping:
            raise Refused("The gateway is stopping; send it again once it is back.")
        going = self.running_in(origin.session_key)
        if len(going) >= self.max_per_chat:
            raise Refused(
                f"This chat already has {len(going)} background tasks running (the limit is "
                f"{self.max_per_chat}). Wait for one to finish, or /stop them."
            )
        live = self.runner.registry.get(origin.session_key)
        run = BackgroundRun(
            id=new_run_id(self.clock()),
            origin=origin,
            prompt=prompt,
            started_at=self.clock(),
            model_name=live.model_name if live is not None else None,
        )
        self.runs[run.id] = run  # counted at once: a burst of commands cannot pass the cap
        try:
            await self.ledger.save(run)
        except Exception as exc:
            self.runs.pop(run.id, None)
            log.error("could not record a background run: %s", exc)
            raise Refused(f"Cannot start it: the store refused it ({exc}).") from exc
        self.publish(run, "started")
        self._outer[run.id] = self._tasks.spawn(self._run(run), name=f"background:{run.id}")
        return run

    def stop_chat(self, origin_key: str) -> int:
        """Stop the chat's runs (``/stop``); how many were going."""
        runs = self.running_in(origin_key)
        for run in runs:
            run.stop_requested = True
            turn = self._turns.get(run.id)
            if turn is not None:
                turn.cancel()
        return len(runs)

    async def _run(self, run: BackgroundRun) -> None:
        if run.stop_requested or self._stopping:  # stopped before it began
            self.runs.pop(run.id, None)
            self._outer.pop(run.id, None)
            await self._cancelled(run)
            return
        turn = asyncio.ensure_future(self._turn(run))
        self._turns[run.id] = turn
        try:
            try:
                record, result = await turn
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the feature itself is being torn down
                await self._cancelled(run)
                return
            except Exception as exc:
                log.exception("background run %s failed", run.id)
                await self._ended(run, "failed", failed_text(run.prompt, _why(exc)))
                return
            run.session_id = record.id
            if result.interrupted and (run.stop_requested or self._stopping):
                await self._cancelled(run)
            elif result.error:
                await self._ended(run, "failed", failed_text(run.prompt, result.error))
            else:
                await self._ended(run, "finished", done_text(run.prompt, result.text.strip()))
        finally:
            self._turns.pop(run.id, None)
            self._outer.pop(run.id, None)
            self.runs.pop(run.id, None)

    async def _turn(self, run: BackgroundRun) -> tuple[SessionRecord, TurnResult]:
        user = StoredMessage(
            role="user", content=run.prompt, meta={"background_of": run.origin_key}
        )
        return await self.runner.run_request(
            run.source,
            [user],
            delivery=_Progress(self, run),
            history=[],
            instructions=GUIDANCE,
            new_session=True,
            keep=False,
            model_name=run.model_name,
            acting_for=run.origin,
        )

    async def _cancelled(self, run: BackgroundRun) -> None:
        """Stopped by ``/stop`` (told by its reply: the entry goes) or by the gateway
        stopping (the entry stays: the next start tells the chat)."""
        if run.stop_requested and not self._stopping:
            await self._end_session(run)
            await self._forget(run)
            self.publish(run, "stopped")
        else:
            self.publish(run, "interrupted")

    async def _ended(self, run: BackgroundRun, state: RunState, text: str) -> None:
        """Keep the message for the chat with the entry, then post it, then forget it."""
        run.state, run.text = "answered", text
        try:
            await self.ledger.save(run)
        except Exception:
            log.exception("could not record background run %s as answered", run.id)
        await self._end_session(run)
        error = await self._post(run, text)
        await self._forget(run)
        self.publish(run, state, result=text, delivery_error=error)

    async def recover(self, run: BackgroundRun) -> None:
        """Report a run a previous process left, once its chat's platform is connected."""
        await self._wait_connected(run.origin.platform)
        state: RunState = "finished" if run.state == "answered" else "interrupted"
        if run.state == "running":
            run.state, run.text = "answered", interrupted_text(run.prompt)
            await self.ledger.save(run)  # told once, even if this process dies meanwhile
            await self._end_session(run)
        text = run.text
        error = await self._post(run, text)
        await self._forget(run)
        self.publish(run, state, result=text, delivery_error=error)

    # --- telling the chat ----------------------------------------------------------------

    async def _post(self, run: BackgroundRun, text: str) -> str | None:
        """Send ``text`` to the run's chat; why it failed, or None. The terminal (and the
        app showing a remote chat) get it on the bus, and the chat's transcript keeps it."""
        runner = self.runner
        outcomes = await runner.router.deliver("origin", text, origin=run.origin)
        failed = [o.error or "not sent" for o in outcomes if o.status == "failed"]
        error = "; ".join(failed) or None
        if any(o.status == "sent" for o in outcomes):
            runner.supervisor.sent(run.origin.platform)
        level: Literal["info", "error"] = "error" if error else "info"
        shown = f"{text}\n\n(not delivered: {error})" if error else text
        runner.bus.publish(ev.Notice(text=shown, level=level, session_key=run.origin_key))
        try:
            record = await runner.store.get_active_session(run.origin_key)
        except Exception:
            log.exception("could not find the chat of background run %s", run.id)
            record = None
        if record is not None:
            await runner.keep_note(record.id, "notice", shown, {"level": level})
        if error:
            log.warning("background run %s: its result was not delivered: %s", run.id, error)
        return error

    async def _end_session(self, run: BackgroundRun) -> None:
        """Close the run's own session: it is one turn, not a chat to come back to."""
        try:
            record = await self.runner.store.get_active_session(run.key)
            if record is not None:
                run.session_id = run.session_id or record.id
                await self.runner.store.end_session(record.id)
        except Exception:
            log.exception("could not close the session of background run %s", run.id)

    async def _forget(self, run: BackgroundRun) -> None:
        """The chat was told: the entry goes (a replayed ``/background`` is the command
        guard's to drop, see :mod:`.runs`)."""
        run.state, run.text = "done", ""
        try:
            await self.ledger.delete(run.id)
        except Exception:  # the next start reports it again: at least once, never lost
            log.exception("could not forget background run %s", run.id)

    # --- platforms and events --------------------------------------------------------------

    def _on_event(self, event: ev.GatewayEvent) -> None:
        if isinstance(event, ev.PlatformStatus) and event.state == "connected":
            self._connected_event(event.platform).set()

    def _connected_event(self, platform: str) -> asyncio.Event:
        return self._connected.setdefault(platform, asyncio.Event())

    async def _wait_connected(self, platform: str) -> None:
        """Until the platform is connected (a restart's report must not fail only because
        Telegram is still connecting); for as long as the gateway runs."""
        status = self.runner.platform_state.get(platform)
        if status is not None and status.state == "connected":
            return
        await self._connected_event(platform).wait()

    def publish(
        self,
        run: BackgroundRun,
        state: RunState,
        *,
        tool: str = "",
        result: str = "",
        delivery_error: str | None = None,
    ) -> None:
        session_id = run.session_id
        if not session_id:
            live = self.runner.registry.get(run.key)
            session_id = live.record.id if live is not None else ""
            run.session_id = session_id
        self.runner.bus.publish(
            BackgroundRunChanged(
                run_id=run.id,
                origin_key=run.origin_key,
                session_key=run.key,
                state=state,
                prompt=run.prompt,
                session_id=session_id,
                steps=run.steps,
                tool=tool,
                result=clip(result, RESULT_LIMIT),
                delivery_error=delivery_error,
                started_at=run.started_at,
            )
        )


def _why(exc: Exception) -> str:
    return redact(str(exc)) or type(exc).__name__
