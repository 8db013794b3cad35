"""The Discord connection: resume, what discord.py gives up on, and fatal configuration.

discord.py resumes a dropped gateway by itself; the adapter's watcher only steps in when
discord.py stops trying (here: Discord unreachable at login), and a bad token or a missing
privileged intent is reported once as a failed state instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from hermes_gateway.platforms.discord.adapter import DiscordAdapter
from hermes_gateway.platforms.discord.connection import (
    RECONNECT_CAP,
    reconnect_backoff,
    rest_base,
)
from hermes_tui.assembly import build_gateway
from tests.helpers import Recorder
from tests.integration.test_discord_harness import (
    DM_ALICE,
    InteractiveFakeDiscord,
    add_world,
    discord_config,
    discord_gateway,
)


async def test_dropped_gateway_is_resumed_without_duplicate_answers(hermes_home, fake_openai):
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm("first")
        assert await h.wait_answers(DM_ALICE, 1) == ["echo: first"]
        await h.fake.drop_connection()
        # Sent while the bot is disconnected: Discord replays it on RESUME.
        await h.dm("second")
        await h.fake.wait_for(lambda: h.fake.resumes == 1)
        assert await h.wait_answers(DM_ALICE, 2) == ["echo: first", "echo: second"]
        await h.dm("third")
        assert await h.wait_answers(DM_ALICE, 3) == ["echo: first", "echo: second", "echo: third"]
        await asyncio.sleep(0.1)
        assert len(h.answers(DM_ALICE)) == 3
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == [
            "first",
            "second",
            "third",
        ]
        assert h.fake.identifies == 1
        states = [s for s, _, _ in h.states()]
        assert states[-3:] == ["connected", "reconnecting", "connected"]


async def test_bad_token_is_fatal_and_not_retried(hermes_home, fake_openai):
    async with discord_gateway(
        hermes_home, fake_openai, wait_connected=False, DISCORD_BOT_TOKEN="not-the-token"
    ) as h:
        await h.wait_state("failed")
        state, detail, _ = h.states()[-1]
        assert "token" in detail and "DISCORD_BOT_TOKEN" in detail
        await asyncio.sleep(0.5)
        logins = [r for r in h.fake.requests if r.path == "/users/@me"]
        assert [r.status for r in logins] == [401]
        assert h.fake.identifies == 0 and h.states()[-1][0] == "failed"


async def test_missing_message_content_intent_is_fatal(hermes_home, fake_openai):
    async with discord_gateway(
        hermes_home, fake_openai, wait_connected=False, fake_options={"privileged_intents": 0}
    ) as h:
        await h.wait_state("failed")
        assert "Message Content intent" in h.states()[-1][1]
        await asyncio.sleep(0.3)
        assert len(h.fake.gateway_connects) == 1


async def test_watcher_reconnects_when_discord_py_gives_up(hermes_home, fake_openai):
    probe = InteractiveFakeDiscord()
    await probe.start()
    port = probe.port
    await probe.stop()
    config = discord_config(hermes_home, fake_openai, probe)  # same URLs, nothing listening
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    runner = await gateway.start(local=False)
    adapter = runner.adapters["discord"]
    assert isinstance(adapter, DiscordAdapter)
    fake = InteractiveFakeDiscord()
    try:

        def statuses():
            return [e for e in recorder.events if type(e).__name__ == "PlatformStatus"]

        await recorder.wait_for(lambda: any(s.state == "reconnecting" for s in statuses()))
        waiting = next(s for s in statuses() if s.state == "reconnecting")
        assert waiting.retry_in is not None and 1.0 <= waiting.retry_in <= 1.2
        assert "cannot reach Discord" in waiting.detail
        started = time.monotonic()
        add_world(fake)
        await fake.start(port)
        await recorder.wait_for(lambda: statuses()[-1].state == "connected", timeout=5)
        assert time.monotonic() - started < waiting.retry_in + 1.0
        await fake.inject_message(DM_ALICE, "are you back?", author_id=4242)
        await fake.wait_for(lambda: len(fake.messages_in(DM_ALICE)) == 1)
        await runner.wait_idle()
        assert fake.messages_in(DM_ALICE)[0].current_content == "echo: are you back?"
    finally:
        await gateway.stop()
        await fake.stop()
        recorder.close()
    # The redirect of discord.py's process-wide endpoints is undone on stop.
    assert Route.BASE == "https://discord.com/api/v10"
    assert str(DiscordWebSocket.DEFAULT_GATEWAY).startswith("wss://gateway.discord.gg")


def test_backoff_doubles_up_to_five_minutes():
    backoff = reconnect_backoff()
    backoff.jitter = 0.0
    delays = [backoff.next() for _ in range(13)]
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert max(delays) == RECONNECT_CAP == 300.0 and delays[-1] == 300.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:9/api/v10", "http://127.0.0.1:9/api/v10"),
        ("http://127.0.0.1:9/api/v9/", "http://127.0.0.1:9/api/v9"),
        ("http://127.0.0.1:9/api", "http://127.0.0.1:9/api/v10"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9/api/v10"),
    ],
)
def test_api_base_accepts_the_usual_spellings(given, expected):
    assert rest_base(given) == expected
