"""Keeping a session within its model's window: measure before each turn, compress if needed.

The window is ``model.context_length``, else what the server lists in ``/v1/models``, else
:data:`~hermes_gateway.agent.context.DEFAULT_CONTEXT_LENGTH`. Before a turn, when the prompt
would pass ``compression.threshold`` of it, the older turns are summarised by the model and
the summary stored (see :mod:`hermes_gateway.agent.context`); ``/compress`` does the same on
demand. A summary that fails (model error, timeout) changes nothing: the history stays whole
and the turn goes on, or fails with the model's own error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hermes_gateway import events as ev
from hermes_gateway.agent import context as cx
from hermes_gateway.agent.server_models import served_context_length
from hermes_gateway.store import StoredMessage
from hermes_gateway.text import clip

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import Agent
    from hermes_gateway.config import Config, ModelConfig
    from hermes_gateway.runner.sessions import SessionRegistry, SessionRuntime
    from hermes_gateway.store import SessionStore

__all__ = ["COMPRESSION_HEADER", "Compressed", "ContextKeeper"]

log = logging.getLogger(__name__)

COMPRESSION_HEADER = {"X-Hermes-Purpose": "compression"}
_WINDOW_IN_ERROR = re.compile(
    r"(?:maximum context length|max_model_len|context window|context length)\D{0,40}?(\d{3,})",
    re.IGNORECASE,
)
"""The window a server names when it refuses a prompt (OpenAI, vLLM, llama.cpp wordings)."""
UNKNOWN_WINDOW_TTL = 600.0
"""Seconds before a server that did not tell its window is asked again."""
RETRY_AFTER_TURNS = 3
"""Turns that pass without a new attempt after a summary failed (a model that times out
would otherwise cost every turn its timeout)."""

_INSTRUCTION = (
    "You compress a conversation so it can continue in less room. Write a faithful summary "
    "of the transcript below for the assistant's own later use: the user's goals and "
    "preferences, facts and decisions established, files, commands and results that matter, "
    "and what was still open. Keep names, numbers and paths exact. Plain prose or short "
    "bullets; no preamble."
)


class _Core(Protocol):
    """The runner as the keeper uses it (a protocol, so this module needs no pipeline)."""

    config: Config
    registry: SessionRegistry
    store: SessionStore
    bus: ev.EventBus
    agent: Agent


@dataclass(frozen=True)
class Compressed:
    """What one compression did (``error`` set: nothing changed)."""

    tokens_before: int
    tokens_after: int
    messages: int = 0
    error: str | None = None

    @property
    def saved(self) -> int:
        return max(0, self.tokens_before - self.tokens_after)


class ContextKeeper:
    """Measures sessions against their model's window and compresses them."""

    def __init__(self, runner: _Core) -> None:
        self._runner = runner
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        """(base_url, model) -> (valid until, window): a window does not change while we run,
        so the server is asked once (again after a while only if it did not say)."""
        self._learnt: dict[tuple[str, str], int] = {}
        """Windows a server named when it refused a prompt: they win over everything."""

    @property
    def config(self) -> Config:
        return self._runner.config

    async def window(self, model: ModelConfig) -> int:
        """The model's context length in tokens."""
        key = (model.base_url, model.name)
        learnt = self._learnt.get(key)
        if learnt is not None:
            return learnt
        if model.context_length:
            return model.context_length
        now = time.monotonic()
        cached = self._windows.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        served = await served_context_length(model)
        until = math.inf if served else now + UNKNOWN_WINDOW_TTL
        window = served or cx.DEFAULT_CONTEXT_LENGTH
        self._windows[key] = (until, window)
        return window

    async def overflowed(self, model: ModelConfig, error: str | None, status: int | None) -> bool:
        """Whether a turn failed because its prompt was too long; the window the server named
        is remembered, so the next turn is cut to fit."""
        if status != 400 or not error or "context" not in error.lower():
            return False
        found = _WINDOW_IN_ERROR.search(error)
        if found:
            named = int(found.group(1))
            if named < await self.window(model):
                self._learnt[(model.base_url, model.name)] = named
                log.warning("%s: the server's window is %d tokens", model.name, named)
        return True

    def measure(self, rt: SessionRuntime, history: list[dict[str, Any]]) -> int:
        """Tokens the next prompt will take: the system prompt and the history, estimated;
        the server's own count of the last turn (plus an estimate of what came since) when it
        reported one and that is more."""
        system = {"role": "system", "content": self._runner.registry.system_prompt(rt)}
        estimate = cx.estimate_tokens([system, *history])
        tokens, covered = rt.reported
        if tokens and covered <= len(history) and history is rt.history:
            return max(estimate, tokens + cx.estimate_tokens(history[covered:]))
        return estimate

    async def fit(self, rt: SessionRuntime) -> list[dict[str, Any]]:
        """The session's history, compressed first if the next prompt would pass the
        threshold (and compression is enabled)."""
        registry = self._runner.registry
        history = await registry.history(rt)
        settings = self.config.compression
        if not settings.enabled:
            return history
        window = await self.window(registry.model_for(rt))
        limit = cx.effective_threshold(settings.threshold, window) * window
        if self.measure(rt, history) <= limit:
            return history
        if rt.compress_skip > 0:  # failed lately: let a few turns pass before trying again
            rt.compress_skip -= 1
            return history
        if (await self.compress(rt, on_demand=False)).error:
            rt.compress_skip = RETRY_AFTER_TURNS
        return await registry.history(rt)

    async def compress(self, rt: SessionRuntime, *, on_demand: bool = True) -> Compressed:
        """Fold the older turns of ``rt`` into a stored summary (``/compress``, or ``fit``).

        On demand, everything but the last ``protect_last_n`` messages is folded; before an
        overflow, the tail also keeps ``target_ratio`` of the threshold's worth of tokens.
        """
        registry = self._runner.registry
        store = self._runner.store
        model = registry.model_for(rt)
        window = await self.window(model)
        settings = self.config.compression
        history = await registry.history(rt)
        before = self.measure(rt, history)
        system = {"role": "system", "content": registry.system_prompt(rt)}
        # The server may count more than the estimate: cut the tail by its measure.
        scale = max(1.0, before / max(1, cx.estimate_tokens([system, *history])))
        record = rt.record
        stored = await store.get_messages(record.id)
        trigger = cx.effective_threshold(settings.threshold, window) * window
        plan = cx.plan_compression(
            stored,
            tail_tokens=0 if on_demand else int(settings.target_ratio * trigger / scale),
            protect_last_n=settings.protect_last_n,
            tail_cap=int(trigger * 0.5 / scale),
        )
        if plan is None:
            return Compressed(before, before, error="nothing older to compress yet")
        try:
            text = await asyncio.wait_for(
                self._summarize(model, plan, window), timeout=settings.timeout
            )
        except Exception as exc:  # the model failed or timed out: keep everything
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("compression failed in %s: %s", rt.key, reason)
            return self._publish(rt, record.id, Compressed(before, before, error=reason), window)
        through = plan.head[-1].id
        summary = StoredMessage(
            role="system",
            content=text,
            meta={"compaction": {"through": through, "messages": len(plan.head)}},
        )
        if rt.record is not record:
            return Compressed(before, before, error="the session was reset meanwhile")
        await store.append_messages(record.id, [summary])
        context = [cx.summary_message(summary), *(m.to_openai() for m in plan.tail)]
        if rt.history is not None:
            rt.history[:] = context  # the same list a running caller may hold
        else:
            rt.history = context
        rt.reported = (0, 0)
        after = self.measure(rt, rt.history)
        rt.context_tokens = after
        return self._publish(rt, record.id, Compressed(before, after, len(plan.head)), window)

    def _publish(
        self, rt: SessionRuntime, session_id: str, outcome: Compressed, window: int
    ) -> Compressed:
        self._runner.bus.publish(
            ev.ContextCompressed(
                session_key=rt.key,
                session_id=session_id,
                tokens_before=outcome.tokens_before,
                tokens_after=outcome.tokens_after,
                context_length=window,
                messages=outcome.messages,
                error=outcome.error,
            )
        )
        if outcome.error:
            self._runner.bus.publish(
                ev.Notice(
                    text=f"Context compression failed ({outcome.error}); history kept.",
                    level="warning",
                    session_key=rt.key,
                )
            )
        return outcome

    async def _summarize(self, model: ModelConfig, plan: cx.Plan, window: int) -> str:
        """The model's summary of the plan's head (and the previous summary)."""
        budget_tokens = max(256, min(2000, window // 8))
        room_chars = max(2000, (window - budget_tokens) * 3)  # 4 chars/token, with margin
        lines: list[str] = []
        if plan.previous is not None:
            lines.append(f"[earlier summary]\n{plan.previous.content or ''}")
        per = max(200, room_chars // max(1, len(plan.head) + 1))
        for m in plan.head:
            lines.append(_render(m, per))
        transcript = "\n\n".join(lines)
        if len(transcript) > room_chars:
            transcript = transcript[-room_chars:]
        client = self._runner.agent.pool.client_for(model)
        response = await client.chat.completions.create(
            model=model.name,
            messages=[
                {"role": "system", "content": _INSTRUCTION},
                {"role": "user", "content": transcript},
            ],
            max_tokens=budget_tokens,
            extra_headers=COMPRESSION_HEADER,
        )
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        if not text:
            raise ValueError("the model returned an empty summary")
        return clip(text, budget_tokens * 4)


def _render(message: StoredMessage, limit: int) -> str:
    """One message as a line of the transcript the summarizer reads."""
    if message.role == "tool":
        return f"[tool result {message.name or ''}] {clip(message.content or '', limit)}"
    calls = "".join(
        f"\n[calls {(c.get('function') or {}).get('name', '?')}"
        f"({clip(str((c.get('function') or {}).get('arguments', '')), 300)})]"
        for c in message.tool_calls or []
        if isinstance(c, dict)
    )
    return f"[{message.role}] {clip(message.content or '', limit)}{calls}"
