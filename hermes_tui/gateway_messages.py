"""One Textual message per gateway event type, so each pane handles only what it shows.

Every message carries its event as ``message.event``. Each class names the event type it
wraps (``EVENT``); :data:`MESSAGE_FOR` is built once from them and :func:`message_for` picks
the class for an event, falling back to :class:`GatewayMessage` for event types the TUI does
not know (a newer gateway, a feature's events).

Messages do not bubble: the bridge posts them to the main screen, whose routing table hands a
copy to each pane that handles the type (see :mod:`hermes_tui.screens.main`). Bubbling would
bring every copy back up to the screen and the app.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.message import Message

from hermes_cron import events as cron
from hermes_gateway import events as ev
from hermes_gateway.access import events as access
from hermes_gateway.background import events as background
from hermes_gateway.hooks import events as hooks


class GatewayMessage(Message, bubble=False, namespace="gateway"):
    """A gateway event; also the fallback for event types without a message class."""

    EVENT: ClassVar[type[ev.GatewayEvent]] = ev.GatewayEvent

    def __init_subclass__(cls, **kwargs: Any) -> None:
        kwargs.setdefault("bubble", False)  # Textual resets it to True for each subclass
        super().__init_subclass__(**kwargs)

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event

    @property
    def session_key(self) -> str | None:
        return getattr(self.event, "session_key", None)

    def copy(self) -> GatewayMessage:
        """A fresh message for another recipient (a posted message belongs to one pump)."""
        return type(self)(self.event)


# --- conversation ---------------------------------------------------------------------------


class MessageReceived(GatewayMessage):
    EVENT = ev.MessageReceived
    event: ev.MessageReceived


class TurnStarted(GatewayMessage):
    EVENT = ev.TurnStarted
    event: ev.TurnStarted


class AgentDelta(GatewayMessage):
    EVENT = ev.AgentDelta
    event: ev.AgentDelta


class AgentStep(GatewayMessage):
    EVENT = ev.AgentStep
    event: ev.AgentStep


class ToolStarted(GatewayMessage):
    EVENT = ev.ToolStarted
    event: ev.ToolStarted


class ToolFinished(GatewayMessage):
    EVENT = ev.ToolFinished
    event: ev.ToolFinished


class TurnFinished(GatewayMessage):
    EVENT = ev.TurnFinished
    event: ev.TurnFinished


class ContextCompressed(GatewayMessage):
    EVENT = ev.ContextCompressed
    event: ev.ContextCompressed


class CommandReplied(GatewayMessage):
    EVENT = ev.CommandReplied
    event: ev.CommandReplied


class TranscriptRewound(GatewayMessage):
    EVENT = ev.TranscriptRewound
    event: ev.TranscriptRewound


class Notice(GatewayMessage):
    EVENT = ev.Notice
    event: ev.Notice


# --- sessions and access --------------------------------------------------------------------


class SessionChanged(GatewayMessage):
    EVENT = ev.SessionChanged
    event: ev.SessionChanged


class MessageDropped(GatewayMessage):
    EVENT = ev.MessageDropped
    event: ev.MessageDropped


class AccessDenied(GatewayMessage):
    EVENT = ev.AccessDenied
    event: ev.AccessDenied


class PairingRequested(GatewayMessage):
    EVENT = access.PairingRequested
    event: access.PairingRequested


class PairingResolved(GatewayMessage):
    EVENT = access.PairingResolved
    event: access.PairingResolved


class ApprovalRequested(GatewayMessage):
    EVENT = access.ApprovalRequested
    event: access.ApprovalRequested


class ApprovalResolved(GatewayMessage):
    EVENT = access.ApprovalResolved
    event: access.ApprovalResolved


# --- platforms and health -------------------------------------------------------------------


class PlatformStatus(GatewayMessage):
    EVENT = ev.PlatformStatus
    event: ev.PlatformStatus


class PlatformCounters(GatewayMessage):
    EVENT = ev.PlatformCounters
    event: ev.PlatformCounters


class LoopLag(GatewayMessage):
    EVENT = ev.LoopLag
    event: ev.LoopLag


class EventsDropped(GatewayMessage):
    EVENT = ev.EventsDropped
    event: ev.EventsDropped


# --- cron -----------------------------------------------------------------------------------


class CronJobChanged(GatewayMessage):
    EVENT = cron.CronJobChanged
    event: cron.CronJobChanged


class CronRunStarted(GatewayMessage):
    EVENT = cron.CronRunStarted
    event: cron.CronRunStarted


class CronRunFinished(GatewayMessage):
    EVENT = cron.CronRunFinished
    event: cron.CronRunFinished


# --- background runs ------------------------------------------------------------------------


class BackgroundRunChanged(GatewayMessage):
    EVENT = background.BackgroundRunChanged
    event: background.BackgroundRunChanged


# --- hooks ----------------------------------------------------------------------------------


class HooksLoaded(GatewayMessage):
    EVENT = hooks.HooksLoaded
    event: hooks.HooksLoaded


class HookFailed(GatewayMessage):
    EVENT = hooks.HookFailed
    event: hooks.HookFailed


MESSAGE_FOR: dict[type[ev.GatewayEvent], type[GatewayMessage]] = {
    cls.EVENT: cls for cls in GatewayMessage.__subclasses__()
}
"""Event type -> message class, built once at import."""


def message_for(event: ev.GatewayEvent) -> GatewayMessage:
    return MESSAGE_FOR.get(type(event), GatewayMessage)(event)
