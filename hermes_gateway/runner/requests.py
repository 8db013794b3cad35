"""Request/response turns: an HTTP request, a cron run or a webhook waits for its answer.

They are stored and published like a chat's turns, so they show live in the control room,
but skip the access policy (the caller authenticated the request) and commands.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from hermes_gateway.models import SessionSource
from hermes_gateway.platforms.base import TurnDelivery
from hermes_gateway.runner.sessions import NOTICE_KV, SessionRuntime
from hermes_gateway.store import SessionRecord, StoredMessage

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import TurnOptions, TurnResult
    from hermes_gateway.runner.context import ContextKeeper
    from hermes_gateway.runner.sessions import SessionRegistry
    from hermes_gateway.runner.supervisor import PlatformSupervisor
    from hermes_gateway.store import SessionStore

__all__ = ["RequestTurns"]


class _Core(Protocol):
    """The runner as request turns use it (a protocol, so this module needs no pipeline)."""

    registry: SessionRegistry
    supervisor: PlatformSupervisor
    store: SessionStore
    context: ContextKeeper

    @property
    def stopping(self) -> bool: ...

    def publish_received(self, rt: SessionRuntime, text: str, user_name: str | None) -> None: ...

    def start_worker(self, rt: SessionRuntime) -> None: ...

    async def run_agent(
        self,
        rt: SessionRuntime,
        history: list[dict[str, Any]],
        *,
        delivery: TurnDelivery | None = None,
        instructions: str | None = None,
        use_tools: bool = True,
        options: TurnOptions | None = None,
    ) -> TurnResult: ...


class RequestTurns:
    """Runs turns whose caller waits, one after another per session, on the runner's parts."""

    def __init__(self, runner: _Core) -> None:
        self._runner = runner

    async def run(
        self,
        source: SessionSource,
        messages: list[StoredMessage],
        *,
        delivery: TurnDelivery,
        history: list[dict[str, Any]] | None = None,
        instructions: str | None = None,
        new_session: bool = False,
        keep: bool = True,
        model_name: str | None = None,
        use_tools: bool = True,
        acting_for: SessionSource | None = None,
        options: TurnOptions | None = None,
    ) -> tuple[SessionRecord, TurnResult]:
        """One agent turn whose caller waits for the answer (an HTTP request), not a chat.

        Turns of one session run one after another. Cancelling the caller (a client that
        hung up) interrupts the turn, which still stores what was said and publishes
        TurnFinished.

        Args:
            source: The conversation; its key names the session.
            messages: What this request adds: stored, then answered.
            delivery: Receives the answer as it streams (the HTTP response).
            history: The context before ``messages``; None continues the stored session.
            instructions: Added to the system prompt for this turn only.
            new_session: Start a new stored session for the key (a one-off request).
            keep: Keep the live session afterwards; False frees it (one-off requests, so
                memory stays flat however many there are).
            model_name: A configured model to use instead of the session's.
            use_tools: False answers from the model alone (untrusted input, e.g. webhooks).
            acting_for: The chat this turn works for (a cron job made in that chat): tools
                run within that chat's boundary and approval mode.
            options: The caller's own tools and sampling parameters (see ``TurnOptions``).
        """
        sessions = self._runner.registry
        stored = False
        if new_session:
            # The session and this request's messages in one transaction: one hop to the
            # store's thread fewer per one-off request.
            messages = [*_unanswered(history or [], messages), *messages]
            record = await sessions.create_record(source, messages=messages)
            stored = True
            rt = SessionRuntime(key=source.session_key, source=source, record=record, history=[])
            sessions.adopt(rt, "started")
        else:
            rt = await sessions.runtime(source)  # an expired session is replaced here too
            if rt.reset_notice:  # a program's request: the bus has told the app
                rt.reset_notice = None
                await self._runner.store.kv_delete(NOTICE_KV + rt.key)
        while rt.task is not None and not rt.task.done():
            await asyncio.wait({rt.task})
        if model_name:
            rt.model_name = model_name
        rt.acting_for = acting_for
        rt.interrupt.clear()
        task = asyncio.create_task(
            self._turn(
                rt, messages, stored, delivery, history, instructions, keep, use_tools, options
            ),
            name=f"turns:{rt.key}",
        )
        rt.task = task
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            rt.interrupt.set()
            raise
        return rt.record, result

    async def _turn(
        self,
        rt: SessionRuntime,
        messages: list[StoredMessage],
        stored: bool,
        delivery: TurnDelivery,
        history: list[dict[str, Any]] | None,
        instructions: str | None,
        keep: bool,
        use_tools: bool,
        options: TurnOptions | None,
    ) -> TurnResult:
        runner = self._runner
        try:
            if history is None:
                context = await runner.registry.history(rt)
            else:
                context, rt.history = list(history), None  # stored transcript != this context
            if not stored:  # (a new session's were stored with it)
                messages = [*_unanswered(context, messages), *messages]
                if messages:
                    await runner.store.append_messages(rt.record.id, messages)
            if messages:
                runner.registry.touched(rt)
                context.extend(m.to_openai() for m in messages)
            if history is None and keep:
                # A session the server keeps is compressed before it would overflow; a
                # one-off request's messages are the client's own and reach the model as sent
                # (an overflow is the model server's 400, passed on).
                context = await runner.context.fit(rt)
            user = next((m for m in reversed(messages) if m.role == "user"), None)
            runner.supervisor.received(rt.source.platform)
            runner.publish_received(rt, (user.content or "") if user else "", rt.source.user_name)
            return await runner.run_agent(
                rt,
                context,
                delivery=delivery,
                instructions=instructions,
                use_tools=use_tools,
                options=options,
            )
        finally:
            if rt.pending and not runner.stopping:  # a chat message arrived meanwhile
                runner.start_worker(rt)
            elif not keep:
                runner.registry.forget(rt)


UNANSWERED = "not run: the client sent no result for this call"


def _unanswered(
    context: list[dict[str, Any]], messages: list[StoredMessage]
) -> list[StoredMessage]:
    """Tool results for calls the context's last step left open and ``messages`` do not answer.

    A turn that ended on a client's own tool calls (see ``TurnOptions``) waits for their
    results; a client that moves on with a new question instead would leave calls without
    results, and model servers refuse such a history. So they are answered as not run.
    """
    answered: set[str] = set()
    calls: list[dict[str, Any]] = []
    for entry in reversed(context):
        if entry.get("role") == "tool":
            answered.add(str(entry.get("tool_call_id")))
            continue
        if entry.get("role") == "assistant" and entry.get("tool_calls"):
            calls = entry["tool_calls"]
        break
    answered.update(m.tool_call_id or "" for m in messages if m.role == "tool")
    return [
        StoredMessage(
            role="tool",
            content=UNANSWERED,
            tool_call_id=call["id"],
            name=(call.get("function") or {}).get("name"),
        )
        for call in calls
        if call.get("id") not in answered
    ]
