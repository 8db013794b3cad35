"""The Telegram connection's life: bad tokens, outages, restarts and shutdowns.

Why: a gateway runs for weeks. Telegram going away must end in "reconnecting in N s" and a
recovery, a bad token in one clear "failed" with no retry storm, and neither may disturb
another platform. Across restarts no update may be answered twice, and a clean shutdown
must not lose the ones that were already fetched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hermes_gateway import events as ev
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.test_telegram_adapter import (
    DM,
    start_gateway,
    telegram_config,
    updates_handled,
)


async def test_invalid_token_is_fatal_and_the_terminal_keeps_working(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeTelegram() as tg:
        config = telegram_config(hermes_home, fake_openai, tg)
        config.platforms.telegram.token = "999:REVOKED"
        h = await start_gateway(config, tg, local=True)
        try:
            failed = await h.wait_state("failed")
            assert "token" in failed.detail.lower() and "401" in failed.detail
            await asyncio.sleep(0.3)
            assert len(tg.rejected_calls) == 1  # one getMe, no retry storm
            assert "reconnecting" not in h.states()
            await h.gw.local.submit("still there?")  # another platform is unaffected
            await h.answered(1)
            assert h.rec.of(ev.TurnFinished)[0].text == "echo: still there?"
        finally:
            await h.stop()


async def test_outages_are_retried_with_backoff_until_telegram_is_back(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    tg = FakeTelegram()
    await tg.start()
    port = tg.port
    await tg.stop()  # Telegram is unreachable when the gateway starts
    config = telegram_config(hermes_home, fake_openai, tg)
    h = await start_gateway(config, tg, wait=False)
    try:
        first = await h.wait_state("reconnecting")
        assert first.retry_in is not None and 0.05 <= first.retry_in <= 0.2
        assert "network" in first.detail
        await h.rec.wait_for(lambda: h.states().count("reconnecting") >= 2)
        delays = [e.retry_in for e in h.rec.of(ev.PlatformStatus) if e.state == "reconnecting"]
        assert delays[1] > delays[0]  # exponential

        await tg.start(port=port)
        await h.wait_state("connected")
        tg.inject_message(DM, "after the outage")
        await h.answered(1)
        assert [m.plain_text for m in tg.messages_in(DM)] == ["echo: after the outage"]

        # Now it goes away while polling, and comes back.
        before = len(h.rec.of(ev.PlatformStatus))
        await tg.stop()
        await h.rec.wait_for(
            lambda: any(e.state == "reconnecting" for e in h.rec.of(ev.PlatformStatus)[before:]),
            timeout=5,
        )
        tg.inject_message(DM, "sent during the outage")
        await tg.start(port=port)
        await h.rec.wait_for(
            lambda: h.rec.of(ev.PlatformStatus)[-1].state == "connected", timeout=8
        )
        await h.answered(2)
        assert [m.plain_text for m in tg.messages_in(DM)][-1] == "echo: sent during the outage"
    finally:
        await h.stop()
        await tg.stop()


async def test_a_token_revoked_while_polling_fails_once(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeTelegram() as tg:
        config = telegram_config(hermes_home, fake_openai, tg)
        config.platforms.telegram.poll_timeout = 0.2
        h = await start_gateway(config, tg)
        try:
            tg.remove_token(tg.token)
            failed = await h.wait_state("failed")
            assert "token" in failed.detail.lower()
            await asyncio.sleep(0.5)
            assert len(tg.rejected_calls) <= 2  # no retry storm
            assert h.states()[-1] == "failed"
        finally:
            await h.stop()


async def test_restarts_never_answer_an_update_twice(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeTelegram() as tg:
        config = telegram_config(hermes_home, fake_openai, tg)
        h = await start_gateway(config, tg)
        first = tg.inject_message(DM, "one")
        await h.answered(1)
        await h.stop()

        # Telegram re-sends an update whose confirmation it lost (as after a crash), and a
        # new message arrives while the gateway is down.
        tg.inject_update(first)
        tg.inject_message(DM, "two")
        h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
        try:
            await h.answered(1)
            await updates_handled(h.gw, tg)  # the duplicate is skipped by the adapter
            users = [
                m["content"]
                for r in fake_openai.requests
                for m in r["messages"][-1:]
                if m["role"] == "user"
            ]
            assert users == ["one", "two"]
            assert [m.plain_text for m in tg.messages_in(DM)] == ["echo: one", "echo: two"]
        finally:
            await h.stop()
        assert tg.pending_updates == 0


async def test_a_clean_shutdown_keeps_fetched_updates_for_the_next_start(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeTelegram() as tg:
        config = telegram_config(hermes_home, fake_openai, tg)
        config.platforms.telegram.media_group_wait = 30.0  # the album is still open at stop
        h = await start_gateway(config, tg)
        tg.add_file("P1", b"\xff\xd8one", "photos/one.jpg")
        tg.add_file("P2", b"\xff\xd8two", "photos/two.jpg")
        for i, file_id in enumerate(("P1", "P2")):
            update = tg.inject_message(
                DM, photo_file_id=file_id, caption="look" if i == 0 else None
            )
            update["message"]["media_group_id"] = "album-9"
        await h.rec.wait_for(lambda: h.adapter.inbound.busy == 1 and tg.pending_updates == 0)
        await h.stop()  # fetched and confirmed to Telegram, but not yet answered
        assert fake_openai.requests == []
        assert tg.pending_updates == 0

        h = await start_gateway(telegram_config(hermes_home, fake_openai, tg), tg)
        try:
            await h.answered(1)
            assert len(fake_openai.requests) == 1
            content = fake_openai.requests[0]["messages"][-1]["content"]
            assert content[0] == {"type": "text", "text": "look"}
            assert sum(p["type"] == "image_url" for p in content) == 2
        finally:
            await h.stop()
