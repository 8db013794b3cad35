"""Which follow-ups get an acknowledgement: per chat, once per 30 s, per the two settings."""

from __future__ import annotations

from hermes_gateway.config import GatewayConfig
from hermes_gateway.runner.busy_ack import ACK_COOLDOWN, BURST, TEXTS, BusyAcks


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
    clock = Clock()
    acks = BusyAcks(GatewayConfig(), clock)
    for outcome in ("started", "held", "stored", "duplicate", "empty"):
        assert acks.text_for("a", outcome) is None
    clock.now += BURST
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


def test_messages_in_the_burst_that_started_the_turn_get_no_line() -> None:
    """Several messages sent at once, or a backlog fetched at a reconnect: the first starts
    the turn, the rest are queued behind it without a line each time."""
    clock = Clock()
    acks = BusyAcks(GatewayConfig(), clock)
    assert acks.text_for("a", "started") is None
    clock.now += BURST - 0.5
    assert acks.text_for("a", "queued") is None
    assert acks.text_for("b", "queued") == TEXTS["queued"]  # another chat's turn
    clock.now += 1.0  # now past the burst: a follow-up typed while the answer is written
    assert acks.text_for("a", "queued") == TEXTS["queued"]
