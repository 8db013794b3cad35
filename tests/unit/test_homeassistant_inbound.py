"""Home Assistant events as messages: hostile or malformed events are nobody's message."""

from __future__ import annotations

from hermes_gateway.config import HomeAssistantConfig
from hermes_gateway.platforms.homeassistant.inbound import HaInbound
from hermes_gateway.platforms.homeassistant.websocket import websocket_url

USER = "0b4e5c2d9a8f4f6e8d7c6b5a4f3e2d1c"


def event(data, user=USER, context_id="01HX"):
    return {
        "event_type": "hermes_conversation",
        "data": data,
        "context": {"id": context_id, "user_id": user},
    }


def test_malformed_events_are_ignored():
    inbound = HaInbound(HomeAssistantConfig())
    for bad in (None, [], {"text": None}, {"text": 42}, {"text": "   "}):
        assert inbound.conversation(event(bad)) is None
    assert inbound.conversation({"data": {"text": "hi"}, "context": "nope"}) is None


def test_sender_comes_from_the_context_and_ids_cannot_forge_keys():
    inbound = HaInbound(HomeAssistantConfig())
    msg = inbound.conversation(event({"text": " hi ", "conversation_id": "a:b"}, context_id="c1"))
    assert msg is not None and msg.text == "hi"
    assert msg.source.session_key == f"homeassistant:dm:{USER}"  # "a:b" refused as an id
    forged = inbound.conversation(event({"text": "x"}, user="x:dm:other", context_id="c2"))
    assert forged is not None and forged.source.user_id is None
    assert forged.source.session_key == "homeassistant:dm:anonymous"
    assert inbound.conversation(event({"text": "again"}, context_id="c1")) is None  # seen


def test_state_changes_follow_hermes_filters_and_cooldown():
    now = [0.0]
    cfg = HomeAssistantConfig(watch_entities=["sensor.temp"], cooldown_seconds=30)
    inbound = HaInbound(cfg, clock=lambda: now[0])

    def change(entity, old, new, cid):
        return {
            "event_type": "state_changed",
            "context": {"id": cid},
            "data": {
                "entity_id": entity,
                "old_state": {"state": old},
                "new_state": {"state": new, "attributes": {"unit_of_measurement": "°C"}},
            },
        }

    first = inbound.state_change(change("sensor.temp", "20", "21", "a"))
    assert first is not None and first.text.endswith("from 20°C to 21°C")
    assert first.source.user_id == "homeassistant"
    assert inbound.state_change(change("sensor.temp", "21", "22", "b")) is None  # cooldown
    now[0] = 31
    assert inbound.state_change(change("sensor.temp", "22", "22", "c")) is None  # no change
    assert inbound.state_change(change("sensor.other", "1", "2", "d")) is None  # not watched
    assert inbound.state_change(change("sensor.temp", "22", "23", "e")) is not None


def test_websocket_url():
    assert websocket_url("https://ha.example:8123/") == "wss://ha.example:8123/api/websocket"
    assert websocket_url("http://127.0.0.1:1") == "ws://127.0.0.1:1/api/websocket"
