"""Turning Home Assistant events into the gateway's ``MessageEvent``.

Two kinds of event reach the agent:

* a *conversation* event (``hermes_conversation`` by default) is a person talking: its
  ``data.text`` is the message and its ``context.user_id`` (set by HA, not by whoever wrote
  the event data) is the sender, checked against HASS_ALLOWED_USERS by the runner. The
  session is the user's own; a ``data.conversation_id`` makes a separate session *of that
  user* (it is a thread under the user), so naming someone else's id reaches nothing of
  theirs. ``data.notify`` may name the notify service for the answer (only in the ``notify``
  domain);
* a ``state_changed`` event of a watched entity (Hermes Agent's filters and per-entity
  cooldown) is Home Assistant itself reporting, one shared "events" session.

Every HA event has a unique ``context.id``: it is the message id, so nothing is taken twice.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from typing import Any

from hermes_gateway.config import HA_SYSTEM_USER, HomeAssistantConfig
from hermes_gateway.models import MessageEvent, SessionSource

__all__ = ["EVENTS_CHAT", "HaInbound"]

EVENTS_CHAT = "events"
"""The chat id of state changes."""
MAX_TEXT = 16_000
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_SERVICE = re.compile(r"^(?:notify\.)?([a-z0-9_]{1,64})$")
_SEEN_MAX = 4096


class HaInbound:
    """Normalises events for one HA instance; remembers where each chat's answers go."""

    def __init__(self, config: HomeAssistantConfig, clock: Any = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._last_change: dict[str, float] = {}
        self.notify_for: OrderedDict[str, str] = OrderedDict()
        """Session key -> notify service named by the chat's latest event."""
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, context_id: str) -> bool:
        if not context_id:
            return True
        if context_id in self._seen:
            return False
        self._seen[context_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        return True

    def conversation(self, event: dict[str, Any]) -> MessageEvent | None:
        data, context = event.get("data"), event.get("context")
        if not isinstance(data, dict) or not isinstance(context, dict):
            return None  # HA always sends both: this is not an HA event
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return None
        context_id = str(context.get("id") or "")
        if not self.first_time(context_id):
            return None
        user = context.get("user_id")
        user_id = user if isinstance(user, str) and _SAFE_ID.match(user) else None
        conversation = data.get("conversation_id")
        thread = (
            conversation if isinstance(conversation, str) and _SAFE_ID.match(conversation) else None
        )
        source = SessionSource(
            "homeassistant", user_id or "anonymous", "dm", thread, user_id, None, None
        )
        notify = data.get("notify")
        if isinstance(notify, str) and (match := _SERVICE.match(notify.strip())):
            self.notify_for[source.session_key] = match.group(1)
            self.notify_for.move_to_end(source.session_key)
            while len(self.notify_for) > _SEEN_MAX:
                self.notify_for.popitem(last=False)
        return MessageEvent(
            text=text.strip()[:MAX_TEXT], source=source, message_id=context_id or None
        )

    def _watched(self, entity_id: str) -> bool:
        cfg = self.config
        if entity_id in cfg.ignore_entities:
            return False
        if cfg.watch_domains or cfg.watch_entities:
            return (
                entity_id.split(".", 1)[0] in cfg.watch_domains or entity_id in cfg.watch_entities
            )
        return cfg.watch_all

    def state_change(self, event: dict[str, Any]) -> MessageEvent | None:
        data = event.get("data")
        if not isinstance(data, dict):
            return None
        entity_id = str(data.get("entity_id") or "")
        new, old = data.get("new_state"), data.get("old_state")
        if not entity_id or not isinstance(new, dict) or not self._watched(entity_id):
            return None
        old_value = str(old.get("state", "unknown")) if isinstance(old, dict) else "unknown"
        new_value = str(new.get("state", "unknown"))
        if old_value == new_value:
            return None  # an attribute changed, not the state
        now = self._clock()
        if now - self._last_change.get(entity_id, float("-inf")) < self.config.cooldown_seconds:
            return None
        self._last_change[entity_id] = now
        context = event.get("context") if isinstance(event.get("context"), dict) else {}
        context_id = str((context or {}).get("id") or "")
        if not self.first_time(context_id):
            return None
        attributes = new.get("attributes") if isinstance(new.get("attributes"), dict) else {}
        name = str((attributes or {}).get("friendly_name") or entity_id)
        unit = str((attributes or {}).get("unit_of_measurement") or "")
        text = (
            f"[Home Assistant] {name} ({entity_id}) changed from "
            f"{old_value}{unit} to {new_value}{unit}"
        )
        source = SessionSource(
            "homeassistant",
            EVENTS_CHAT,
            "channel",
            None,
            HA_SYSTEM_USER,
            "Home Assistant",
            "Home Assistant events",
        )
        return MessageEvent(text=text, source=source, message_id=context_id or None)
