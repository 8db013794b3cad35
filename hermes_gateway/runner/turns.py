"""One agent turn: the sink that fans progress out to the bus and the chat's delivery.

Kept apart from the pipeline so that the request/response path (API, cron, webhooks) and the
chat path run the very same turn code.
"""

from __future__ import annotations

from typing import Any

from hermes_gateway import events as ev
from hermes_gateway.platforms.base import TurnDelivery

__all__ = ["TurnSink"]


class TurnSink:
    """Fans the agent's progress out to the bus and the chat's delivery."""

    __slots__ = ("bus", "delivery", "key", "turn_id")

    def __init__(self, bus: ev.EventBus, key: str, turn_id: int, delivery: TurnDelivery) -> None:
        self.bus, self.key, self.turn_id, self.delivery = bus, key, turn_id, delivery

    def on_delta(self, text: str) -> None:
        self.bus.publish(ev.AgentDelta(session_key=self.key, turn_id=self.turn_id, text=text))
        self.delivery.on_delta(text)

    def on_tool_started(self, call_id: str, name: str, preview: str, arguments: str = "") -> None:
        self.bus.publish(
            ev.ToolStarted(
                session_key=self.key,
                turn_id=self.turn_id,
                call_id=call_id,
                name=name,
                preview=preview,
                arguments=arguments,
            )
        )
        self.delivery.on_tool_started(name, preview)

    def on_tool_finished(
        self, call_id: str, name: str, ok: bool, duration: float, summary: str, output: str = ""
    ) -> None:
        self.bus.publish(
            ev.ToolFinished(
                session_key=self.key,
                turn_id=self.turn_id,
                call_id=call_id,
                name=name,
                ok=ok,
                duration=duration,
                summary=summary,
                output=output,
            )
        )
        self.delivery.on_tool_finished(name, ok, duration, summary)

    def on_step(self, iteration: int, tools: list[dict[str, Any]]) -> None:
        self.bus.publish(
            ev.AgentStep(
                session_key=self.key, turn_id=self.turn_id, iteration=iteration, tools=tuple(tools)
            )
        )

    def on_notice(self, text: str, level: str) -> None:
        self.bus.publish(ev.Notice(text=text, level=level, session_key=self.key))  # type: ignore[arg-type]
