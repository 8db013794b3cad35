"""Which follow-ups get an acknowledgement: per chat, once per 30 s, per the two settings."""

from __future__ import annotations

from hermes_gateway.config import GatewayConfig
from hermes_gateway.runner.busy_ack import ACK_COOLDOWN, TEXTS, BusyAcks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_once_per_cooldown_per_chat() -> None:
    clock = Clock()
    acks = BusyAcks(GatewayConfig(), clock)
    assert acks.text_for("a", "queued") == TEXTS["queued"]
    assert acks.text_for("a", "steered") is None  # within 30 s of the last, whatever kind
    assert acks.text_for("b", "interrupted") == TEXTS["interrupted"]  # another chat
    clock.now += ACK_COOLDOWN - 0.1
    assert acks.text_for("a", "queued") is None
    clock.now += 0.2
    assert acks.text_for("a", "steered") == TEXTS["steered"]


def test_a_message_that_started_a_turn_is_not_acknowledged() -> None:
    acks = BusyAcks(GatewayConfig(), Clock())
    for outcome in ("started", "held", "stored", "duplicate", "empty"):
        assert acks.text_for("a", outcome) is None
    assert acks.text_for("a", "queued") is not None  # and they did not start the cooldown


def test_settings() -> None:
    off = BusyAcks(GatewayConfig(busy_ack=False), Clock())
    assert all(off.text_for("a", o) is None for o in TEXTS)
    silent_steer = BusyAcks(GatewayConfig(busy_steer_ack=False), Clock())
    assert silent_steer.text_for("a", "steered") is None
    assert silent_steer.text_for("a", "queued") == TEXTS["queued"]


def test_thousands_of_chats_keep_only_the_recent() -> None:
    clock = Clock()
    acks = BusyAcks(GatewayConfig(), clock)
    for i in range(5000):
        acks.text_for(f"chat{i}", "queued")
        clock.now += 0.01  # 50 s in all: the first ones are past the cooldown
    assert len(acks._last) < 5000
    assert acks.text_for("chat4999", "queued") is None  # a recent one still remembered
