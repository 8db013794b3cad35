"""Gateway events -> hook events, with Hermes Agent's context keys.

The bridge listens on the bus (a synchronous listener: it only builds a dict and queues it),
so the pipeline needs no hook calls of its own. What each hook event gets (Hermes Agent's keys
first; ours after them, which Hermes-written hooks simply do not read):

==================  ==========================================================================
``session:start``   platform, user_id, session_id, session_key (at the first message of a new
                    session, as in Hermes Agent)
``session:end``     platform, user_id, session_key; session_id (the one that ended), reason
``session:reset``   platform, user_id, session_key; session_id (the new one), reason (``new``,
                    or ``idle``/``daily`` when a reset policy expired the session)
``agent:start``     platform, user_id, chat_id, thread_id, chat_type, session_id, message
                    (first 500 characters); session_key, model
``agent:step``      platform, user_id, session_id, iteration, tool_names, tools (``name``,
                    ``arguments``, ``result`` of the previous step's calls); session_key
``agent:end``       agent:start's keys + response (first 500 characters); error, interrupted
==================  ==========================================================================

``gateway:startup`` and ``command:<name>`` are fired by :class:`~.feature.HooksFeature` itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from hermes_gateway import events as ev
from hermes_gateway.models import SessionSource, parse_session_key

__all__ = ["HookBridge", "source_context"]

TEXT_LIMIT = 500
"""Characters of a message or answer a hook gets (Hermes Agent's limit)."""
REMEMBERED = 2048
"""Chats the bridge remembers a pending message or running turn of (oldest forgotten)."""

K = TypeVar("K")
V = TypeVar("V")


class _Recent(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its oldest entries beyond a size (bounded memory)."""

    def __init__(self, limit: int = REMEMBERED) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def source_context(source: SessionSource) -> dict[str, Any]:
    """Where an event happened, in Hermes Agent's keys."""
    return {
        "platform": source.platform,
        "user_id": source.user_id,
        "chat_id": source.chat_id or "",
        "thread_id": source.thread_id or "",
        "chat_type": source.chat_type or "",
        "session_key": source.session_key,
    }


class HookBridge:
    """Turns bus events into ``notify(event_type, context)`` calls."""

    def __init__(
        self,
        notify: Callable[[str, dict[str, Any]], None],
        sources: Callable[[str], SessionSource | None],
    ) -> None:
        self.notify = notify
        self.sources = sources
        """The chat behind a session key (None when it is not live in memory)."""
        self._current: _Recent[str, str] = _Recent()
        self._fresh: _Recent[str, str] = _Recent()
        self._message: _Recent[str, str] = _Recent()
        self._turns: _Recent[tuple[str, int], dict[str, Any]] = _Recent()

    def __call__(self, event: ev.GatewayEvent) -> None:
        if isinstance(event, ev.SessionChanged):
            self._session(event)
        elif isinstance(event, ev.MessageReceived):
            self._received(event)
        elif isinstance(event, ev.TurnStarted):
            self._turn_started(event)
        elif isinstance(event, ev.AgentStep):
            self._step(event)
        elif isinstance(event, ev.TurnFinished):
            self._turn_finished(event)

    def where(self, session_key: str) -> dict[str, Any]:
        source = self.sources(session_key)
        if source is not None:
            return source_context(source)
        try:
            platform, chat_type, chat_id, thread_id = parse_session_key(session_key)
        except ValueError:
            platform, chat_type, chat_id, thread_id = "", "", "", None
        return {
            "platform": platform,
            "user_id": None,
            "chat_id": chat_id,
            "thread_id": thread_id or "",
            "chat_type": chat_type,
            "session_key": session_key,
        }

    def _short(self, key: str) -> dict[str, Any]:
        """The keys Hermes Agent gives session events."""
        where = self.where(key)
        return {"platform": where["platform"], "user_id": where["user_id"], "session_key": key}

    def _session(self, event: ev.SessionChanged) -> None:
        key = event.session_key
        previous = event.previous_id or self._current.get(key)
        self._current[key] = event.session_id
        if event.reason == "started":
            self._fresh[key] = event.session_id
        elif event.reason == "reset":
            reason = event.expired or "new"
            if previous and previous != event.session_id:
                self.notify(
                    "session:end", {**self._short(key), "session_id": previous, "reason": reason}
                )
            self.notify(
                "session:reset",
                {**self._short(key), "session_id": event.session_id, "reason": reason},
            )
            self._fresh[key] = event.session_id

    def _received(self, event: ev.MessageReceived) -> None:
        if event.is_command or event.from_operator:
            return
        key = event.session_key
        self._message[key] = event.text
        fresh = self._fresh.pop(key, None)
        if fresh is not None:
            session_id = event.session_id or fresh
            self.notify("session:start", {**self._short(key), "session_id": session_id})

    def _turn_started(self, event: ev.TurnStarted) -> None:
        key = event.session_key
        where = self.where(key)
        context = {
            "platform": where["platform"],
            "user_id": where["user_id"],
            "chat_id": where["chat_id"],
            "thread_id": where["thread_id"],
            "chat_type": where["chat_type"],
            "session_id": event.session_id,
            "message": (self._message.pop(key, "") or "")[:TEXT_LIMIT],
            "session_key": key,
            "model": event.model,
        }
        self._turns[(key, event.turn_id)] = context
        self.notify("agent:start", dict(context))

    def _step(self, event: ev.AgentStep) -> None:
        started = self._turns.get((event.session_key, event.turn_id))
        where = started or self.where(event.session_key)
        tools = [dict(t) for t in event.tools]
        self.notify(
            "agent:step",
            {
                "platform": where["platform"],
                "user_id": where["user_id"],
                "session_id": (started or {}).get("session_id", ""),
                "iteration": event.iteration,
                "tool_names": [str(t.get("name") or "") for t in tools],
                "tools": tools,
                "session_key": event.session_key,
            },
        )

    def _turn_finished(self, event: ev.TurnFinished) -> None:
        context = self._turns.pop((event.session_key, event.turn_id), None)
        if context is None:
            where = self.where(event.session_key)
            context = {**where, "session_id": event.session_id, "message": ""}
        self.notify(
            "agent:end",
            {
                **context,
                "response": (event.text or "")[:TEXT_LIMIT],
                "error": event.error,
                "interrupted": event.interrupted,
            },
        )
