"""The delivery router (hermes_gateway/delivery/router.py): target language, resolution, outcomes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hermes_gateway.delivery.router import (
    DeliveryOutcome,
    DeliveryRouter,
    Target,
    TargetError,
    is_silent,
    parse_targets,
    summarize,
)
from hermes_gateway.models import SessionSource
from hermes_gateway.platforms.base import PlatformAdapter
from tests.conftest import make_config


class Recording(PlatformAdapter):
    """A platform that records sends; ``fail`` makes every send raise, ``delay`` slows it."""

    def __init__(self, name: str, *, fail: Exception | None = None, delay: float = 0) -> None:
        super().__init__()
        self.name = name
        self.fail = fail
        self.delay = delay
        self.sent: list[tuple[SessionSource, str]] = []

    async def start(self) -> None:
        self.report("connected")

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        self.sent.append((source, text))


ORIGIN = SessionSource(platform="telegram", chat_id="555", chat_type="dm", user_name="ann")
LOCAL_ORIGIN = SessionSource(platform="local", chat_id="operator")


@pytest.fixture
def config(hermes_home: Path):
    return make_config(
        hermes_home, TELEGRAM_HOME_CHANNEL="-1001:7", DISCORD_HOME_CHANNEL="", HERMES_MODEL="m"
    )


def test_parse_targets_accepts_the_whole_language():
    assert parse_targets("") == [Target("local", "local")]
    assert parse_targets(None) == [Target("local", "local")]
    targets = parse_targets(" origin , Telegram, discord:42, telegram:-1001:7, origin ")
    assert targets == [
        Target("origin", "origin"),
        Target("telegram", "home", platform="telegram"),
        Target("discord:42", "chat", platform="discord", chat_id="42"),
        Target("telegram:-1001:7", "chat", platform="telegram", chat_id="-1001", thread_id="7"),
    ]


@pytest.mark.parametrize("spec", ["local:1", "origin:5", "tele gram", "telegram:", ":5", "x:1:2:3"])
def test_parse_targets_rejects_malformed_items(spec):
    with pytest.raises(TargetError):
        parse_targets(spec)


def test_silent_marker_is_exact():
    assert is_silent("[SILENT]") and is_silent("  [SILENT]\n")
    assert not is_silent("[SILENT] but here is news") and not is_silent("") and not is_silent(None)


def test_check_rejects_origin_without_a_chat_and_unknown_platforms(config):
    router = DeliveryRouter(config, {})
    assert router.check("origin", origin=ORIGIN)[0].kind == "origin"
    with pytest.raises(TargetError, match="origin"):
        router.check("local,origin")
    with pytest.raises(TargetError, match="Unknown platform"):
        router.check("myspace")
    assert [t.spec for t in router.check("telegram,discord:9")] == ["telegram", "discord:9"]


def test_resolve_home_channel_with_thread_and_local_origin(config):
    router = DeliveryRouter(config, {})
    chat = router.resolve(Target("telegram", "home", platform="telegram"), None)
    assert chat is not None and (chat.platform, chat.chat_id, chat.thread_id) == (
        "telegram",
        "-1001",
        "7",
    )
    assert router.resolve(Target("origin", "origin"), LOCAL_ORIGIN) is None
    assert router.resolve(Target("origin", "origin"), ORIGIN) == ORIGIN
    with pytest.raises(TargetError, match="home_channel"):
        router.resolve(Target("discord", "home", platform="discord"), None)


async def test_deliver_sends_to_each_target_once_and_reports_per_target(config):
    tg = Recording("telegram")
    router = DeliveryRouter(config, {"telegram": tg})
    outcomes = await router.deliver(
        "local, origin, telegram, telegram:555", "the answer", origin=ORIGIN, title="⏰ Daily"
    )
    assert [(o.target, o.status, o.destination) for o in outcomes] == [
        ("local", "local", None),
        ("origin", "sent", "telegram:555"),
        ("telegram", "sent", "telegram:-1001:7"),
        ("telegram:555", "sent", "telegram:555"),  # the same chat as origin: sent once
    ]
    assert sorted((s.chat_id, s.thread_id) for s, _ in tg.sent) == [("-1001", "7"), ("555", None)]
    assert all(text == "⏰ Daily\n\nthe answer" for _, text in tg.sent)
    assert summarize(outcomes) == ("ok", None)


async def test_silent_answer_is_not_delivered(config):
    tg = Recording("telegram")
    router = DeliveryRouter(config, {"telegram": tg})
    outcomes = await router.deliver("origin,telegram", " [SILENT] ", origin=ORIGIN, title="t")
    assert [o.status for o in outcomes] == ["silent", "silent"]
    assert tg.sent == []
    assert summarize(outcomes) == ("silent", None)


async def test_failures_are_outcomes_not_exceptions(config):
    broken = Recording("telegram", fail=RuntimeError("chat not found"))
    slow = Recording("discord", delay=5)
    router = DeliveryRouter(config, {"telegram": broken, "discord": slow}, timeout=0.05)
    outcomes = await router.deliver("telegram:1, discord:2, discord, local", "hi")
    by_target = {o.target: o for o in outcomes}
    assert by_target["telegram:1"].status == "failed"
    assert "chat not found" in (by_target["telegram:1"].error or "")
    assert by_target["discord:2"].status == "failed"
    assert "did not answer" in (by_target["discord:2"].error or "")
    assert "home channel" in (by_target["discord"].error or "")
    assert by_target["local"].ok
    status, error = summarize(outcomes)
    assert status == "partial" and error and "telegram:1" in error


async def test_platform_not_running_and_bad_spec(config):
    router = DeliveryRouter(config, {})
    (outcome,) = await router.deliver("telegram:1", "hi")
    assert outcome.status == "failed" and "not running" in (outcome.error or "")
    assert summarize([outcome])[0] == "failed"
    (bad,) = await router.deliver("nope:", "hi")
    assert bad.status == "failed"


def test_summarize_local_only():
    assert summarize([DeliveryOutcome("local", "local")]) == ("local", None)


def test_home_thread_id_names_the_home_topic(config):
    """Hermes Agent's DISCORD_HOME_CHANNEL_THREAD_ID beside DISCORD_HOME_CHANNEL."""
    config.platforms.discord.home_channel = "55"
    config.platforms.discord.home_thread_id = "66"
    chat = DeliveryRouter(config, {}).resolve(Target("discord", "home", platform="discord"), None)
    assert chat is not None and (chat.chat_id, chat.thread_id) == ("55", "66")
